import { type DuckDBType, DuckDBTypeId } from '@duckdb/node-api';
import type { Signature, TensorSpec } from '@pyml/contract';
import { arrayDims, dtypeOfDuckDB, isNumeric, quoteIdent, sqlTypeFor, widensLosslessly } from './duckdb-types.ts';

/** A column of the user's query result. */
export interface QueryColumn {
  name: string;
  type: DuckDBType;
}

/** How one model input is read from the query: a SQL expression of exactly the input's type. */
export interface InputSource {
  /** The model input, its free per-row dimensions fixed by the column's type. */
  spec: TensorSpec;
  sql: string;
  /** The query columns it is made from (one, or K when packed). */
  columns: string[];
}

export interface ColumnPlan {
  inputs: InputSource[];
  keep: string[];
  /** Set when K scalar columns were packed into one [-1, K] input. */
  packed?: { input: string; columns: string[] };
}

/** The query's columns do not fit the model: every problem, one per line. */
export class ColumnCheckError extends Error {
  override name = 'ColumnCheckError';
  constructor(readonly problems: string[]) {
    super(`the query's columns do not fit the model's signature:\n${problems.map((p) => `  - ${p}`).join('\n')}`);
  }
}

const shapeText = (shape: readonly number[]) => `[${shape.join(', ')}]`;

function needs(spec: TensorSpec): string {
  const rowDims = spec.shape.slice(1);
  if (spec.dtype === 'FP16') return `${spec.dtype} ${shapeText(spec.shape)}`;
  const sql = rowDims.every((d) => d >= 0) ? sqlTypeFor(spec.dtype, rowDims) : `${sqlTypeFor(spec.dtype, [])}${[...rowDims].reverse().map((d) => `[${d === -1 ? 'K' : d}]`).join('')}`;
  return `${spec.dtype} ${shapeText(spec.shape)}, i.e. ${sql}`;
}

/**
 * Why `column` cannot feed `spec` directly, or the SQL expression that reads it at exactly the spec's type, with the
 * spec's free per-row dimensions fixed by the column's ARRAY type.
 */
function directSource(spec: TensorSpec, column: QueryColumn): { sql: string; spec: TensorSpec } | { problem: string } {
  const { leaf, dims } = arrayDims(column.type);
  const want = spec.shape.slice(1);
  const exact = sqlTypeFor(spec.dtype, want.map((d, i) => (d === -1 ? dims[i] ?? 0 : d)));
  if (column.type.typeId === DuckDBTypeId.LIST || leaf.typeId === DuckDBTypeId.LIST) {
    return { problem: `column '${column.name}' is ${column.type.toString()} (a variable-length LIST); input '${spec.name}' needs ${needs(spec)}: cast it in the query, e.g. ${quoteIdent(column.name)}::${exact}` };
  }
  if (dims.length !== want.length || want.some((d, i) => d !== -1 && d !== dims[i])) {
    return { problem: `column '${column.name}' is ${column.type.toString()}; input '${spec.name}' needs ${needs(spec)}` };
  }
  const dtype = dtypeOfDuckDB(leaf);
  if (!dtype || !widensLosslessly(dtype, spec.dtype)) {
    const why = dtype && isNumeric(dtype) && isNumeric(spec.dtype) ? ` (${leaf.toString()} → ${sqlTypeFor(spec.dtype, [])} would lose precision; cast in the query if that is meant: ${quoteIdent(column.name)}::${exact})` : '';
    return { problem: `column '${column.name}' is ${column.type.toString()}; input '${spec.name}' needs ${needs(spec)}${why}` };
  }
  const ident = quoteIdent(column.name);
  const resolved = { ...spec, shape: [spec.shape[0], ...want.map((d, i) => (d === -1 ? dims[i] : d))] };
  return { sql: dtype === spec.dtype ? ident : `CAST(${ident} AS ${exact})`, spec: resolved };
}

/**
 * Matches the query's columns to the model's inputs, before any row runs.
 *
 * - A column named exactly like an input feeds that input; its type must be the input's or widen to it without loss
 *   (INTEGER → BIGINT, FLOAT → DOUBLE, SMALLINT → FLOAT; not DOUBLE → FLOAT). An input of shape [-1, K] reads a
 *   fixed-size ARRAY column (`FLOAT[K]`).
 * - Packing: when the model has exactly one input, of shape [-1, K], and no column is named like it, the query's K
 *   columns besides the --keep columns are packed, in query order, into that input (`[c1, ..., cK]::FLOAT[K]`).
 * - Every other column must be a --keep column; --keep columns pass through to the output unchanged.
 */
export function planColumns(signature: Signature, columns: readonly QueryColumn[], keep: readonly string[]): ColumnPlan {
  const problems: string[] = [];
  const names = columns.map((c) => c.name);
  const seen = new Set<string>();
  for (const name of names) {
    if (seen.has(name)) problems.push(`column '${name}' appears twice in the query result; give each column its own name`);
    seen.add(name);
  }
  for (const k of keep) {
    if (!seen.has(k)) problems.push(`--keep column '${k}' is not in the query result (columns: ${names.join(', ') || 'none'})`);
    if (signature.outputs.some((o) => o.name === k)) problems.push(`--keep column '${k}' has the name of a model output; rename it in the query`);
  }
  for (const spec of [...signature.inputs, ...signature.outputs]) {
    if (spec.dtype === 'FP16') problems.push(`${signature.inputs.includes(spec) ? 'input' : 'output'} '${spec.name}' is FP16, which DuckDB cannot hold`);
    if (spec.shape[0] !== -1) problems.push(`'${spec.name}' has shape ${shapeText(spec.shape)}; batch needs a free first (row) dimension`);
    // An input's free per-row dimensions are fixed by its column's ARRAY type (FLOAT[192][48][3]); an output's
    // column type must be known before the first row runs.
    const isOutput = !signature.inputs.includes(spec);
    if (isOutput && spec.shape.slice(1).includes(-1)) problems.push(`output '${spec.name}' has shape ${shapeText(spec.shape)}; batch needs its per-row dimensions fixed`);
  }

  const inputs: InputSource[] = [];
  const used = new Set<string>(keep);
  let packed: ColumnPlan['packed'];
  const only = signature.inputs.length === 1 ? signature.inputs[0] : undefined;
  const packable = only && only.shape.length === 2 && only.shape[1] > 0 && isNumeric(only.dtype) && !seen.has(only.name);
  if (only && packable) {
    const k = only.shape[1];
    const candidates = columns.filter((c) => !keep.includes(c.name));
    if (candidates.length !== k) {
      problems.push(`input '${only.name}' (${needs(only)}) is not a column of the query, so its ${k} values per row are packed from the query's columns besides --keep, in order; the query has ${candidates.length}${candidates.length ? ` (${candidates.map((c) => c.name).join(', ')})` : ''}`);
    } else {
      const exact = sqlTypeFor(only.dtype, []);
      const parts: string[] = [];
      for (const c of candidates) {
        const dtype = dtypeOfDuckDB(c.type);
        if (!dtype || !isNumeric(dtype) || !widensLosslessly(dtype, only.dtype)) {
          const lossy = dtype && isNumeric(dtype) ? ` (${c.type.toString()} → ${exact} would lose precision; cast in the query if that is meant: ${quoteIdent(c.name)}::${exact})` : '';
          problems.push(`column '${c.name}' is ${c.type.toString()}; packed into input '${only.name}' it must be a number that fits ${exact}${lossy}`);
        }
        parts.push(dtype === only.dtype ? quoteIdent(c.name) : `CAST(${quoteIdent(c.name)} AS ${exact})`);
        used.add(c.name);
      }
      inputs.push({ spec: only, sql: `[${parts.join(', ')}]::${sqlTypeFor(only.dtype, [k])}`, columns: candidates.map((c) => c.name) });
      packed = { input: only.name, columns: candidates.map((c) => c.name) };
    }
  } else {
    for (const spec of signature.inputs) {
      const column = columns.find((c) => c.name === spec.name);
      if (!column) {
        problems.push(`missing column '${spec.name}' for input '${spec.name}' (${needs(spec)})`);
        continue;
      }
      used.add(column.name);
      const source = directSource(spec, column);
      if ('problem' in source) problems.push(source.problem);
      else inputs.push({ spec: source.spec, sql: source.sql, columns: [column.name] });
    }
  }
  for (const name of names) {
    if (!used.has(name)) {
      problems.push(`column '${name}' is neither a model input (${signature.inputs.map((s) => s.name).join(', ')}) nor a --keep column`);
    }
  }
  if (problems.length) throw new ColumnCheckError(problems);
  return { inputs, keep: [...keep], ...(packed ? { packed } : {}) };
}
