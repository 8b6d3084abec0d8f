import { randomBytes } from 'node:crypto';
import { mkdir, rm } from 'node:fs/promises';
import { basename, dirname, join, resolve } from 'node:path';
import type { DuckDBConnection } from '@duckdb/node-api';
import { quoteIdent, quoteString } from './duckdb-types.ts';
import { ownedPrefix, removeDeadRunsLeftovers } from '@pyml/image';
import { publishDataset, refuseToReplaceNonDataset } from './dataset-dir.ts';

/** Where `pyml batch` writes: a table of a DuckDB database, or a (Hive-partitioned) Parquet dataset. */
export type OutputTarget =
  | { kind: 'table'; db: string; table: string }
  | { kind: 'parquet'; dir: string; partitionBy: string[] };

export function describeTarget(t: OutputTarget): string {
  return t.kind === 'table' ? `table ${t.table} in ${t.db}` : `Parquet dataset ${t.dir}${t.partitionBy.length ? ` (partitioned by ${t.partitionBy.join(', ')})` : ''}`;
}

/** `table` or `schema.table`, quoted. */
export function qualifiedTable(name: string): string {
  const parts = name.split('.');
  if (parts.length > 2 || parts.some((p) => !p)) throw new Error(`--into ${JSON.stringify(name)}: expected TABLE or SCHEMA.TABLE`);
  return parts.map(quoteIdent).join('.');
}

/** A dataset being written into a sibling temp directory: `commit` renames it into the target's place. */
export interface DatasetTemp {
  /** The temp directory the Parquet files go to. */
  dir: string;
  /** The temp directory takes the target's name (the earlier dataset, if any, moved aside first, then deleted). */
  commit(): Promise<void>;
  /** Removes the temp directory (a failed run). */
  discard(): Promise<void>;
}

/**
 * Makes the temp directory a new dataset is written into, beside `--out` so that the rename is atomic. Temp (and
 * moved-aside) datasets that killed runs left there are removed first; ours carries our pid.
 */
export async function openDatasetTemp(target: Extract<OutputTarget, { kind: 'parquet' }>): Promise<DatasetTemp> {
  const dir = resolve(target.dir);
  await refuseToReplaceNonDataset(dir);
  await mkdir(dirname(dir), { recursive: true });
  const prefix = `.${basename(dir)}.pyml-`;
  await removeDeadRunsLeftovers(dirname(dir), prefix);
  const temp = join(dirname(dir), `${ownedPrefix(prefix)}${randomBytes(6).toString('hex')}`);
  await mkdir(temp);
  const discard = () => rm(temp, { recursive: true, force: true });
  return {
    dir: temp,
    discard,
    async commit() {
      try {
        await publishDataset(temp, dir);
      } catch (error) {
        await discard();
        throw error;
      }
    },
  };
}

/**
 * The statement that writes `select` as the `index`-th part of a dataset in `dir`: data_000000.parquet,
 * data_000001.parquet, ... (or, partitioned, data_000000_0.parquet in each column=value directory), so that a
 * dataset's files, read in name order, hold the rows in order.
 */
export function copyPartStatement(select: string, dir: string, partitionBy: readonly string[], index: number): string {
  const part = `data_${String(index).padStart(6, '0')}`;
  if (!partitionBy.length) return `COPY (${select}) TO ${quoteString(join(dir, `${part}.parquet`))} (FORMAT parquet)`;
  return `COPY (${select}) TO ${quoteString(dir)} (FORMAT parquet, PARTITION_BY (${partitionBy.map(quoteIdent).join(', ')}), FILENAME_PATTERN ${quoteString(`${part}_{i}`)}, OVERWRITE_OR_IGNORE)`;
}

/**
 * Writes `select` (a query over the staged inputs and predictions) to the target so that the target changes only if
 * everything succeeds:
 * - a table is dropped and re-created inside one DuckDB transaction; a failure rolls back to the earlier table;
 * - a dataset is written to a sibling temp directory, which then takes the target's name (openDatasetTemp).
 */
export async function commitOutput(connection: DuckDBConnection, target: OutputTarget, select: string): Promise<void> {
  if (target.kind === 'table') {
    const table = qualifiedTable(target.table);
    await connection.run('BEGIN TRANSACTION');
    try {
      await connection.run(`DROP TABLE IF EXISTS ${table}`);
      await connection.run(`CREATE TABLE ${table} AS ${select}`);
      await connection.run('COMMIT');
    } catch (error) {
      await connection.run('ROLLBACK').catch(() => {});
      throw error;
    }
    return;
  }
  const temp = await openDatasetTemp(target);
  try {
    await connection.run(copyPartStatement(select, temp.dir, target.partitionBy, 0));
  } catch (error) {
    await temp.discard();
    throw error;
  }
  await temp.commit();
}
