import { resolve } from 'node:path';
import { DuckDBInstance } from '@duckdb/node-api';
import type { Signature } from '@pyml/contract';
import { type ColumnPlan, ColumnCheckError, planColumns } from './column-plan.ts';
import { quoteIdent, quoteString } from './duckdb-types.ts';

/** Where the staged query result is, and how its columns map to the model's inputs. */
export interface StagedInput {
  plan: ColumnPlan;
  /** Staged column of each model input, in signature order (`pyml_input_N`: never a --keep column's name). */
  inputColumns: string[];
  rows: number;
}

/**
 * Checks the query's columns against the image's signature (the same plan as the local `pyml batch`), then, only
 * if they fit, runs the query once into Parquet files under `dir`: the --keep columns as they are, and every model
 * input at exactly its tensor's type (the plan's SQL: casts, packing K columns into one FLOAT[K]). Ray's tasks then
 * read tensors, not SQL, so no column rule runs twice. Files of `rowsPerFile` rows give Ray one read task each.
 */
export async function stageQuery(options: {
  query: string; db?: string; signature: Signature; keep: string[]; partitionBy: string[];
  dir: string; rowGroupRows: number; rowsPerFile: number; memoryLimit?: string; spillDir: string;
}): Promise<StagedInput> {
  const instance = await DuckDBInstance.create(options.db ? resolve(options.db) : ':memory:', options.db ? { access_mode: 'READ_ONLY' } : {}).catch((error: Error) => {
    throw options.db ? new Error(`--db ${resolve(options.db)}: ${error.message.replace(/^IO Error: /, '')}`) : error;
  });
  const connection = await instance.connect();
  try {
    await connection.run(`SET memory_limit = ${quoteString(options.memoryLimit ?? '256MB')}`);
    await connection.run(`SET temp_directory = ${quoteString(options.spillDir)}`);
    const prepared = await connection.prepare(options.query).catch((error: Error) => {
      throw new Error(`the query does not compile: ${error.message}`);
    });
    const columns = Array.from({ length: prepared.columnCount }, (_, i) => ({ name: prepared.columnName(i), type: prepared.columnType(i) }));
    const plan = planColumns(options.signature, columns, options.keep);
    const names = [...options.keep, ...options.signature.outputs.map((o) => o.name)];
    const missing = options.partitionBy.filter((p) => !names.includes(p));
    if (missing.length) throw new ColumnCheckError(missing.map((p) => `--partition-by column '${p}' is neither a --keep column nor a model output (${names.join(', ')})`));

    const inputColumns = plan.inputs.map((_, n) => `pyml_input_${n}`);
    const selected = [
      ...options.keep.map((k) => `pyml_query.${quoteIdent(k)}`),
      ...plan.inputs.map((input, n) => `${input.sql} AS ${quoteIdent(inputColumns[n])}`),
    ];
    const groupsPerFile = Math.max(1, Math.round(options.rowsPerFile / options.rowGroupRows));
    const copied = await connection.runAndReadAll(`COPY (SELECT ${selected.join(', ')} FROM (${options.query}) AS pyml_query) TO ${quoteString(options.dir)}
      (FORMAT parquet, ROW_GROUP_SIZE ${options.rowGroupRows}, ROW_GROUPS_PER_FILE ${groupsPerFile}, FILENAME_PATTERN 'part_{i}')`);
    const rows = Number(copied.getRows()[0]?.[0] ?? 0);
    return { plan, inputColumns, rows };
  } finally {
    connection.closeSync();
    instance.closeSync();
  }
}
