import type { Signature, TensorSpec } from '@pyml/contract';

/** A V2 (Open Inference Protocol) JSON request. */
export interface V2Request {
  inputs: { name: string; datatype: string; shape: number[]; data: unknown[] }[];
}

/** DuckDB's type for each V2 dtype DuckDB can hold (FP16 it cannot; planColumns says so). */
const SQL_TYPE: Record<string, string> = {
  BOOL: 'BOOLEAN', INT8: 'TINYINT', INT16: 'SMALLINT', INT32: 'INTEGER', INT64: 'BIGINT',
  UINT8: 'UTINYINT', UINT16: 'USMALLINT', UINT32: 'UINTEGER', UINT64: 'UBIGINT', FP32: 'FLOAT', FP64: 'DOUBLE', BYTES: 'VARCHAR',
};

const quoteIdent = (name: string) => `"${name.replace(/"/g, '""')}"`;
const quoteString = (text: string) => `'${text.replace(/'/g, "''")}'`;

/**
 * A V2 JSON request from a CSV file, read the way `pyml batch` reads one: DuckDB's `read_csv` (its dialect and
 * type detection), and batch's own column → input mapping (@pyml/batch planColumns), so a file and a --keep list
 * that `pyml batch IMAGE --query "SELECT * FROM read_csv('FILE')" --keep …` takes, predict takes too: a column
 * named like an input feeds it; a model with one [-1, K] input no column is named after gets the K columns
 * besides --keep, in file order; any other column must be a --keep column. --keep columns are read past (the
 * response holds the model's outputs, one row per CSV row, in file order).
 *
 * One difference, since there is no query to cast in: a CSV's numbers are text, so a column feeding a numeric
 * input is read at that input's type (5.1 as FLOAT for an FP32 input), where batch would ask for `::FLOAT` in
 * the query; a cell that is not a number of that type is an error naming its row and column, as is an empty one.
 *
 * DuckDB (and the column planner) load only here, when a CSV is given: a JSON request never loads them.
 */
export async function csvToV2Request(file: string, signature: Signature, options: { keep?: string[] } = {}): Promise<V2Request> {
  const keep = options.keep ?? [];
  const [{ DuckDBInstance }, { planColumns, ColumnCheckError }] = await Promise.all([import('@duckdb/node-api'), import('./column-plan.ts')]);
  const instance = await DuckDBInstance.create(':memory:');
  const connection = await instance.connect();
  try {
    const source = `read_csv(${quoteString(file)})`;
    const described = await connection.prepare(`SELECT * FROM ${source}`).catch((error: Error) => {
      throw new Error(`${file}: not a CSV DuckDB can read: ${error.message}`);
    });
    const columns = Array.from({ length: described.columnCount }, (_, i) => ({ name: described.columnName(i), type: described.columnType(i) }));
    if (columns.length === 0) throw new Error(`${file}: empty CSV; expected a header row naming the columns ${signature.inputs.map((s) => s.name).join(', ')}`);

    // Each column that feeds an input is read at the input's type (TRY_CAST, so a bad cell is found and named).
    const only = signature.inputs.length === 1 ? signature.inputs[0] : undefined;
    const byName = new Map(signature.inputs.map((s) => [s.name, s]));
    const packInto = only && only.shape.length === 2 && only.shape[1]! > 0 && only.dtype !== 'BYTES' && only.dtype !== 'BOOL' && !columns.some((c) => c.name === only.name) ? only : undefined;
    const readAs = new Map<string, TensorSpec>();
    for (const c of columns) {
      if (keep.includes(c.name)) continue;
      const spec = packInto ?? byName.get(c.name);
      if (spec && spec.shape.length <= (packInto ? 2 : 1) && SQL_TYPE[spec.dtype]) readAs.set(c.name, spec);
    }
    const typed = columns.map((c) => {
      const spec = readAs.get(c.name);
      return spec ? `TRY_CAST(${quoteIdent(c.name)} AS ${SQL_TYPE[spec.dtype]}) AS ${quoteIdent(c.name)}` : quoteIdent(c.name);
    });
    const query = `SELECT ${typed.join(', ')} FROM ${source}`;

    // A cell the cast refused: the first one, by row (the header is row 1) and column.
    for (const [name, spec] of readAs) {
      const ident = quoteIdent(name);
      const bad = (await connection.runAndReadAll(
        `SELECT row, raw FROM (SELECT row_number() OVER () AS row, ${ident}::VARCHAR AS raw, TRY_CAST(${ident} AS ${SQL_TYPE[spec.dtype]}) AS value FROM ${source}) WHERE value IS NULL ORDER BY row LIMIT 1`,
      )).getRowsJS()[0];
      if (bad) {
        const [row, raw] = bad as [bigint, string | null];
        const what = raw === null ? 'is empty' : `${JSON.stringify(raw)} is not ${spec.dtype.startsWith('FP') ? 'a number' : spec.dtype === 'BOOL' ? 'a BOOL' : 'an integer'} (${spec.dtype})`;
        throw new Error(`${file}: row ${Number(row) + 1}, column '${name}': ${what}`);
      }
    }

    const prepared = await connection.prepare(query);
    const queryColumns = Array.from({ length: prepared.columnCount }, (_, i) => ({ name: prepared.columnName(i), type: prepared.columnType(i) }));
    let plan;
    try {
      plan = planColumns(signature, queryColumns, keep);
    } catch (error) {
      if (!(error instanceof ColumnCheckError)) throw error;
      const strays = queryColumns.filter((c) => !readAs.has(c.name) && !keep.includes(c.name)).map((c) => c.name);
      const extra = packInto && queryColumns.length - keep.length > packInto.shape[1]! ? queryColumns.find((c) => !keep.includes(c.name))!.name : strays[0];
      const advice = extra ? `\nname the columns that are not model inputs with --keep (e.g. --keep ${extra}), as for pyml batch` : '';
      throw new Error(`${file}: the CSV's columns do not fit the model's signature:\n${error.problems.map((p) => `  - ${p.replaceAll("the query's", "the CSV's").replaceAll('the query', 'the CSV')}`).join('\n')}${advice}`);
    }
    const selected = plan.inputs.map((input, n) => `${input.sql} AS ${quoteIdent(`pyml_input_${n}`)}`);
    const rows = (await connection.runAndReadAll(`SELECT ${selected.join(', ')} FROM (${query}) AS pyml_query`)).getColumnsJS();
    return {
      inputs: plan.inputs.map((input, n) => {
        const values = rows[n] ?? [];
        const spec = input.spec;
        return { name: spec.name, datatype: spec.dtype, shape: [values.length, ...spec.shape.slice(1)], data: values.flat(Infinity as 1).map((v) => jsonValue(v, spec.dtype)) };
      }),
    };
  } finally {
    connection.closeSync();
    instance.closeSync();
  }
}

/** A value as the V2 JSON request carries it: 64-bit integers as exact digit strings, NaN and ±Infinity as text. */
function jsonValue(value: unknown, dtype: string): unknown {
  if (typeof value === 'bigint') return dtype === 'INT64' || dtype === 'UINT64' ? value.toString() : Number(value);
  if (typeof value === 'number' && !Number.isFinite(value)) return String(value);
  return value;
}
