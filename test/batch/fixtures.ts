import { join } from 'node:path';
import { DuckDBInstance } from '@duckdb/node-api';
import { parseJson, pyml } from '../helpers/cli.ts';
import { copyExample, editFile, tempDir } from '../helpers/project.ts';

export const IRIS_COLUMNS = ['sepal_length', 'sepal_width', 'petal_length', 'petal_width'] as const;

/** Builds the onnx-iris example into a fresh layout directory; `edit` may change the model source first. */
export async function buildIris(edit?: (modelSource: string) => string): Promise<string> {
  const project = await copyExample('onnx-iris', 'pyml-batch-project-');
  if (edit) await editFile(join(project, 'src/model.ts'), edit);
  const out = join(await tempDir('pyml-batch-image-'), 'image');
  const r = await pyml(['build', project, '--out', out, '--json']);
  if (r.code !== 0) throw new Error(`build failed (${r.code}): ${r.stderr}`);
  parseJson(r);
  return out;
}

/** Runs SQL on a DuckDB database (or in memory) and returns the rows as JS values. */
export async function sql(db: string | undefined, query: string): Promise<Record<string, unknown>[]> {
  const instance = await DuckDBInstance.create(db ?? ':memory:');
  const connection = await instance.connect();
  try {
    const reader = await connection.runAndReadAll(query);
    return reader.getRowObjectsJS() as Record<string, unknown>[];
  } finally {
    connection.closeSync();
    instance.closeSync();
  }
}

/**
 * Iris-like rows with an id and a day: FLOAT features (iris ranges, deterministic from the id), in Parquet and CSV.
 * `sentinelAt` puts 999 as sepal_length on that row (the throwing test model's trigger).
 */
export async function writeIrisData(dir: string, rows: number, options: { sentinelAt?: number } = {}): Promise<{ parquet: string; csv: string }> {
  const parquet = join(dir, 'iris.parquet');
  const csv = join(dir, 'iris.csv');
  const sentinel = options.sentinelAt === undefined ? '' : `CASE WHEN range = ${options.sentinelAt} THEN 999 ELSE `;
  const select = `SELECT range AS id, '2024-01-0' || (range % 3 + 1) AS ds,
      (${sentinel}4.3 + (range * 37 % 36) / 10.0${sentinel ? ' END' : ''})::FLOAT AS sepal_length,
      (2.0 + (range * 11 % 24) / 10.0)::FLOAT AS sepal_width,
      (1.0 + (range * 53 % 59) / 10.0)::FLOAT AS petal_length,
      (0.1 + (range * 7 % 24) / 10.0)::FLOAT AS petal_width
    FROM range(${rows})`;
  await sql(undefined, `COPY (${select}) TO '${parquet}' (FORMAT parquet)`);
  await sql(undefined, `COPY (${select}) TO '${csv}' (FORMAT csv, HEADER)`);
  return { parquet, csv };
}
