import { spawnSync } from 'node:child_process';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import {
  Field, FixedSizeList, Float32, RecordBatch, RecordBatchReader, RecordBatchStreamWriter, Schema, Struct, makeData,
} from 'apache-arrow';
import { DATA_TYPES } from '@pyml/contract';
import { entrypointCommand, unpackImage, type UnpackedImage } from '@pyml/launcher';
import { widensLosslessly } from '../../packages/batch/src/duckdb-types.ts';
import { parseJson, pyml, testEnv } from '../helpers/cli.ts';
import { tempDir } from '../helpers/project.ts';
import { requireTool } from '../helpers/tools.ts';
import { buildIris } from './fixtures.ts';

/**
 * `pyml batch --emit-spark`: the generated PySpark job compiles, its pure parts agree with pyml batch and launch the
 * image's entrypoint, and the entrypoint side of the mapInArrow protocol holds: what the job's predict_partition
 * writes (FixedSizeList inputs, Spark-sized batches, empty batches, empty partitions) comes back one batch per batch.
 */

const PYTHON = '/usr/bin/python3';
let image = '';
let dir = '';
let job = '';
let rootfs = '';
let unpacked: UnpackedImage;

test.before(async () => {
  requireTool(PYTHON, 'python3');
  Object.assign(process.env, testEnv());
  image = await buildIris();
  dir = await tempDir('pyml-batch-spark-');
  unpacked = await unpackImage(image);
  rootfs = unpacked.rootfs;
});

test('--emit-spark writes a job that compiles and carries the query, target, keep columns and signature', async () => {
  job = join(dir, 'job.py');
  const query = "SELECT id, ds, sepal_length, sepal_width, petal_length, petal_width FROM lake.iris WHERE note != 'it''s'";
  const r = await pyml(['batch', image, '--query', query, '--into', 'lake.iris_scores', '--keep', 'id', '--partition-by', 'ds', '--emit-spark', job, '--json']);
  assert.is(r.code, 0, r.stderr);
  const summary = parseJson<{ spark: { file: string; model: string; manifestDigest: string } }>(r);
  assert.is(summary.spark.file, job);
  assert.is(summary.spark.model, 'iris:1.0.0');
  const compiled = spawnSync(PYTHON, ['-m', 'py_compile', job], { encoding: 'utf8' });
  assert.is(compiled.status, 0, compiled.stderr);
  const text = await readFile(job, 'utf8');
  assert.ok(text.includes('.mapInArrow(predict_partition, '));
  assert.ok(text.includes(summary.spark.manifestDigest));
  // The module's constants, read by Python itself (so quoting survives).
  const constants = python(`import json; print(json.dumps({"q": m.QUERY, "t": m.TARGET_TABLE, "k": m.KEEP, "p": m.PARTITION_BY, "s": m.SIGNATURE}))`);
  assert.equal(JSON.parse(constants), {
    q: query, t: 'lake.iris_scores', k: ['id', 'ds'], p: ['ds'],
    s: { inputs: [{ name: 'input', dtype: 'FP32', shape: [-1, 4] }], outputs: [{ name: 'probabilities', dtype: 'FP32', shape: [-1, 3] }, { name: 'label', dtype: 'INT64', shape: [-1] }] },
  });
});

/** Runs Python with the generated job imported as `m` (pyspark and pyarrow are imported only inside its functions). */
function python(code: string, env: Record<string, string> = {}): string {
  const r = spawnSync(PYTHON, ['-c', `import importlib.util, sys
spec = importlib.util.spec_from_file_location("job", ${JSON.stringify(job)})
m = importlib.util.module_from_spec(spec); spec.loader.exec_module(m)
${code}`], { encoding: 'utf8', env: { ...process.env, ...env } });
  assert.is(r.status, 0, r.stderr);
  return r.stdout;
}

test("the job's lossless-widening rule is pyml batch's, for every pair of dtypes", () => {
  const pairs = DATA_TYPES.filter((d) => d !== 'FP16').flatMap((a) => DATA_TYPES.filter((d) => d !== 'FP16').map((b) => [a, b]));
  const fromPython = JSON.parse(python(`import json; print(json.dumps([m.widens_losslessly(a, b) for a, b in ${JSON.stringify(pairs)}]))`)) as boolean[];
  assert.equal(fromPython, pairs.map(([a, b]) => widensLosslessly(a, b)));
  assert.ok(fromPython.filter(Boolean).length > pairs.length / 4, 'some pairs widen');
});

test("the job's entrypoint command runs the image's own entrypoint from an unpacked rootfs", () => {
  const out = python(`import json, os, subprocess
cmd, env = m.entrypoint_command()
cmd[-1] = "describe"
print(subprocess.run(cmd, env=dict(os.environ, **env), capture_output=True, text=True, check=True).stdout)`, { PYML_ROOTFS: rootfs });
  const manifest = JSON.parse(out) as { name: string; signature: unknown };
  assert.is(manifest.name, 'iris');
});

const INPUT = new Field('input', new FixedSizeList(4, new Field('item', new Float32(), false)), true);

/** A batch as predict_partition writes it: Spark's rows as FixedSizeList<4> float32. */
function sparkBatch(rows: number, seed: number, nullRow?: number): RecordBatch {
  const type = INPUT.type as FixedSizeList;
  const size = type.listSize;
  const values = Float32Array.from({ length: rows * size }, (_, i) => 0.5 + ((i * 7 + seed) % 60) / 10);
  const child = makeData({ type: new Float32(), length: rows * size, data: values });
  const field = INPUT;
  let nullBitmap: Uint8Array | undefined;
  if (nullRow !== undefined) {
    nullBitmap = new Uint8Array(Math.ceil(rows / 8)).fill(0xff);
    nullBitmap[nullRow >> 3] &= ~(1 << (nullRow & 7));
  }
  const column = makeData({ type, length: rows, child, nullCount: nullRow === undefined ? 0 : 1, nullBitmap });
  return new RecordBatch(new Schema([field]), makeData({ type: new Struct([field]), length: rows, children: [column] }));
}

function runEntrypoint(batches: RecordBatch[] | 'schema-only'): Promise<{ status: number | null; stderr: string; stdout: Buffer }> {
  const writer = new RecordBatchStreamWriter();
  if (batches === 'schema-only') writer.reset(undefined, new Schema([INPUT]));
  else for (const b of batches) writer.write(b);
  writer.finish();
  return writer.toUint8Array().then((bytes) => {
    const cmd = entrypointCommand(unpacked, ['batch']);
    const r = spawnSync(cmd.file, cmd.args, { input: bytes, env: cmd.env, cwd: cmd.cwd, maxBuffer: 1 << 28 });
    return { status: r.status, stderr: r.stderr.toString(), stdout: r.stdout };
  });
}

test('entrypoint side of mapInArrow: Spark-sized batches, an empty batch and a partial one, one output batch each', async () => {
  // spark.sql.execution.arrow.maxRecordsPerBatch is 10000 by default; partitions end with a partial batch.
  const sizes = [10000, 10000, 0, 3217];
  const r = await runEntrypoint(sizes.map((n, i) => sparkBatch(n, i)));
  assert.is(r.status, 0, r.stderr);
  const out: RecordBatch[] = [];
  for await (const b of await RecordBatchReader.from(r.stdout)) out.push(b);
  assert.equal(out.map((b) => b.numRows), sizes);
  const fields = out[0].schema.fields;
  assert.equal(fields.map((f) => `${f.name}: ${String(f.type)}`), ['probabilities: FixedSizeList[3]<Float32>', 'label: Int64']);
  const labels = new Set([...out[0].getChild('label')!].map(Number));
  assert.ok([...labels].every((l) => l >= 0 && l <= 2) && labels.size > 1);
});

test('entrypoint side: an empty partition (schema, no batches) gives a valid empty stream and exit 0', async () => {
  const r = await runEntrypoint('schema-only');
  assert.is(r.status, 0, r.stderr);
  const reader = await RecordBatchReader.from(r.stdout);
  const batches: RecordBatch[] = [];
  for await (const b of reader) batches.push(b);
  // Arrow JS shows a schema-only stream as one empty placeholder batch; pyarrow as none.
  assert.is(batches.reduce((n, b) => n + b.numRows, 0), 0);
  assert.equal(batches[0].schema.fields.map((f) => `${f.name}: ${String(f.type)}`), ['probabilities: FixedSizeList[3]<Float32>', 'label: Int64']);
});

test('entrypoint side: a bad batch is reported as one JSON line with its index in the stream (what the job parses)', async () => {
  // A NULL row, as Spark sends for a NULL array: tensors have no nulls.
  const r = await runEntrypoint([sparkBatch(100, 1), sparkBatch(100, 2), sparkBatch(10, 3, 4)]);
  assert.is(r.status, 1);
  const reports = r.stderr.trim().split('\n').map((l) => { try { return JSON.parse(l) as Record<string, unknown>; } catch { return undefined; } }).filter((x) => x && 'batch' in x);
  assert.is(reports.length, 1, r.stderr);
  assert.is(reports[0]!.batch, 2);
  assert.is(reports[0]!.tensor, 'input');
  assert.match(String(reports[0]!.error), /input column 'input': has 1 null value/);
});

test.run();
