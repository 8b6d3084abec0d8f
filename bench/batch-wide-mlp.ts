/**
 * The wide tabular MLP the batch benches run beside iris: 32 FLOAT feature columns → 1024 ReLU → 8 (about 41k
 * multiply-adds a row, a model that costs something, as batch scoring models do), as a pyml project (the iris example
 * with these weights and another name; the signature comes from the ONNX) and as Parquet data (an `id`, then the
 * features f0..f31, deterministic).
 */
import { cp, readFile, rm, symlink, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { DuckDBInstance } from '@duckdb/node-api';
import { writeWideMlp } from './serve-wide-mlp.ts';

const REPO = fileURLToPath(new URL('../', import.meta.url));
export const WIDE_MLP = { inputs: 32, hidden: 1024, outputs: 8 };
export const WIDE_FEATURES = Array.from({ length: WIDE_MLP.inputs }, (_, k) => `f${k}`);

/** Writes the project into `project` (replacing it); returns its ONNX file. */
export async function wideMlpProject(project: string): Promise<string> {
  await rm(project, { recursive: true, force: true });
  await cp(path.join(REPO, 'examples/onnx-iris'), project, { recursive: true, filter: (src) => !src.includes(`${path.sep}.pyml`) });
  await symlink(path.join(REPO, 'node_modules'), path.join(project, 'node_modules'));
  const model = path.join(project, 'weights/model.onnx');
  await writeWideMlp(model, WIDE_MLP);
  const config = path.join(project, 'pyml.config.ts');
  await writeFile(config, (await readFile(config, 'utf8')).replace("name: 'iris'", "name: 'tabular'"));
  return model;
}

/** `rows` rows of an id and the 32 features as FLOAT columns, into a Parquet file. */
export async function writeWideMlpData(file: string, rows: number): Promise<void> {
  const instance = await DuckDBInstance.create(':memory:');
  const c = await instance.connect();
  const features = WIDE_FEATURES.map((f, k) => `(((range * (${k} + 7)) % 101) / 50.0 - 1.0)::FLOAT AS ${f}`).join(', ');
  await c.run(`COPY (SELECT range AS id, ${features} FROM range(${rows})) TO '${file}' (FORMAT parquet)`);
  c.closeSync();
  instance.closeSync();
}
