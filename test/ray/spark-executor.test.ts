import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { unpackImage } from '@pyml/launcher';
import { parseJson, pyml, testEnv } from '../helpers/cli.ts';
import { tempDir } from '../helpers/project.ts';
import { sql, writeIrisData } from '../batch/fixtures.ts';
import { buildSlowableIris, compareDatasets } from './fixtures.ts';
import { rayPythonPath } from './ray-env.ts';

/**
 * The executor side of `pyml batch --emit-spark`, run for real under pyarrow (no Spark): the emitted job's own
 * predict_partition, fed Spark-shaped Arrow record batches (10000 rows, Spark's default maxRecordsPerBatch) read from
 * a real Parquet file, with the image's entrypoint started from its unpacked rootfs (PYML_ROOTFS), as an executor
 * would. Its output equals local pyml batch bit for bit. Only Spark's own scheduling (spark.sql, mapInArrow's
 * plumbing, saveAsTable) stays untested.
 */

const ROWS = 25_000;
const FEATURES = 'sepal_length, sepal_width, petal_length, petal_width';
let image = '';
let dir = '';
let job = '';
let rootfs = '';
let data: { parquet: string };

test.before(async () => {
  Object.assign(process.env, testEnv());
  rayPythonPath();
  dir = await tempDir('pyml-spark-executor-');
  image = await buildSlowableIris();
  data = await writeIrisData(dir, ROWS);
  rootfs = (await unpackImage(image)).rootfs;
  job = join(dir, 'job.py');
  const r = await pyml(['batch', image, '--query', `SELECT id, ds, ${FEATURES} FROM lake.iris`, '--into', 'lake.iris_scores', '--keep', 'id,ds', '--emit-spark', job, '--json']);
  assert.is(r.code, 0, r.stderr);
});

function runExecutor(input: string, output: string) {
  return spawnSync(rayPythonPath(), [new URL('spark_executor.py', import.meta.url).pathname, job, input, output, '10000'], {
    encoding: 'utf8', env: { ...process.env, PYML_ROOTFS: rootfs }, timeout: 120_000,
  });
}

test("predict_partition over Spark-shaped batches of a real Parquet file equals local pyml batch, bit for bit", async () => {
  const local = join(dir, 'local');
  const l = await pyml(['batch', image, '--query', `SELECT id, ds, ${FEATURES} FROM read_parquet('${data.parquet}')`, '--keep', 'id,ds', '--out', local, '--json']);
  assert.is(l.code, 0, l.stderr);
  assert.is(parseJson<{ rows: number }>(l).rows, ROWS);
  const out = join(dir, 'executor.parquet');
  const r = runExecutor(data.parquet, out);
  assert.is(r.status, 0, r.stderr);
  const summary = JSON.parse(r.stdout.trim().split('\n').at(-1)!) as { batchesIn: number; batchesOut: number; rows: number; schema: string[] };
  // 10000 + 10000 + 5000: one output batch per input batch, the partial last one too.
  assert.equal(summary, { batchesIn: 3, batchesOut: 3, rows: ROWS, schema: ['id: int64', 'ds: string', 'probabilities: list<item: float>', 'label: int64'] });
  const same = compareDatasets(local, out, 'id');
  assert.equal(same, { rows: [ROWS, ROWS], distinctKeys: [ROWS, ROWS], columns: [['ds', 'id', 'label', 'probabilities'], ['ds', 'id', 'label', 'probabilities']], differences: [] });
});

test('a NULL inside a row fails predict_partition with the input named, and the entrypoint is not left running', async () => {
  const bad = join(dir, 'with-null.parquet');
  await sql(undefined, `COPY (SELECT id, ds, CASE WHEN id = 12345 THEN NULL ELSE sepal_length END AS sepal_length, sepal_width, petal_length, petal_width
      FROM read_parquet('${data.parquet}')) TO '${bad}' (FORMAT parquet)`);
  const r = runExecutor(bad, join(dir, 'never.parquet'));
  assert.is.not(r.status, 0, 'fails');
  assert.match(r.stderr, /input 'input' has NULL values inside its arrays/, r.stderr);
  const left = spawnSync('pgrep', ['-f', `${rootfs}/opt/pyml/runtime/entrypoint.mjs batch`], { encoding: 'utf8' });
  assert.is(left.stdout.trim(), '', 'no entrypoint process of the image left');
});

test.run();
