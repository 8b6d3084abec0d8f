import { randomBytes } from 'node:crypto';
import { mkdir, rename, rm, stat } from 'node:fs/promises';
import { basename, dirname, join, resolve } from 'node:path';
import type { DuckDBConnection } from '@duckdb/node-api';
import { quoteIdent, quoteString } from './duckdb-types.ts';
import { ownedPrefix, removeDeadRunsLeftovers } from '@pyml/image';
import { refuseToReplaceNonDataset } from './dataset-dir.ts';

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

/**
 * Writes `select` (a query over the staged inputs and predictions) to the target so that the target changes only if
 * everything succeeds:
 * - a table is dropped and re-created inside one DuckDB transaction; a failure rolls back to the earlier table;
 * - a dataset is written to a sibling temp directory, which then takes the target's name (the earlier dataset is
 *   moved aside first and deleted after, so readers see either the old or the new one, never a half-written one).
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
  const dir = resolve(target.dir);
  await refuseToReplaceNonDataset(dir);
  await mkdir(dirname(dir), { recursive: true });
  // Temp (and moved-aside) datasets that killed runs left beside the target go first; ours carries our pid.
  const prefix = `.${basename(dir)}.pyml-`;
  await removeDeadRunsLeftovers(dirname(dir), prefix);
  const temp = join(dirname(dir), `${ownedPrefix(prefix)}${randomBytes(6).toString('hex')}`);
  try {
    if (target.partitionBy.length) {
      await connection.run(`COPY (${select}) TO ${quoteString(temp)} (FORMAT parquet, PARTITION_BY (${target.partitionBy.map(quoteIdent).join(', ')}))`);
    } else {
      await mkdir(temp);
      await connection.run(`COPY (${select}) TO ${quoteString(join(temp, 'data_0.parquet'))} (FORMAT parquet)`);
    }
    await mkdir(temp, { recursive: true });
    const previous = await stat(dir).then(() => true, () => false);
    const aside = `${temp}.old`;
    if (previous) await rename(dir, aside);
    try {
      await rename(temp, dir);
    } catch (error) {
      if (previous) await rename(aside, dir);
      throw error;
    }
    if (previous) await rm(aside, { recursive: true, force: true });
  } catch (error) {
    await rm(temp, { recursive: true, force: true });
    throw error;
  }
}
