/**
 * The onnx plugin's build-time trial load through a skeleton (plugins/onnx/src/load-check-skeleton.ts): big
 * initializers point into the original file instead of being copied. The skeleton must be the same model (same
 * outputs from onnxruntime), must still fail on what the full load fails on, and must leave nothing behind.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { createRequire } from 'node:module';
import { copyFile, link, mkdir, readdir, readFile, rename, rm, stat } from 'node:fs/promises';
import path from 'node:path';
import { planSkeleton, writeSkeleton } from '../../plugins/onnx/src/load-check-skeleton.ts';
import { verifyLoads } from '../../plugins/onnx/src/verify-load.ts';
import { cachedOnnxModelInfo } from '../../plugins/onnx/src/model-info-cache.ts';
import { OnnxDataType, tempDir, tensorType, writeModel } from '../onnx/helpers.ts';

const ort = createRequire(import.meta.url)('onnxruntime-node') as typeof import('onnxruntime-node');

const ROWS = 512, COLS = 1024; // a 2 MiB float initializer: above the skeleton's 1 MiB threshold
const SMALL = 4;

/** input [N, ROWS] × W [ROWS, COLS] + B [COLS], W and B stored as raw_data; `op` replaces MatMul to break it. */
function writeMatMul(dir: string, name: string, options: { op?: string; wBytes?: number } = {}): { path: string; w: Float32Array } {
  const w = Float32Array.from({ length: ROWS * COLS }, (_, i) => Math.sin(i) * 0.01);
  const b = Float32Array.from({ length: COLS }, (_, i) => i / COLS);
  const raw = (a: Float32Array, bytes = a.byteLength) => new Uint8Array(a.buffer, 0, bytes);
  const file = writeModel(dir, name, {
    name: 'matmul',
    node: [
      { op_type: options.op ?? 'MatMul', input: ['x', 'W'], output: ['xw'] },
      { op_type: 'Add', input: ['xw', 'B'], output: ['y'] },
    ],
    initializer: [
      { name: 'W', dims: [ROWS, COLS], data_type: OnnxDataType.FLOAT, raw_data: raw(w, options.wBytes) },
      { name: 'B', dims: [COLS], data_type: OnnxDataType.FLOAT, raw_data: raw(b) },
    ],
    input: [{ name: 'x', type: tensorType(OnnxDataType.FLOAT, ['N', ROWS]) }],
    output: [{ name: 'y', type: tensorType(OnnxDataType.FLOAT, ['N', COLS]) }],
  });
  return { path: file, w };
}

async function run(model: string, x: Float32Array): Promise<Float32Array> {
  const session = await ort.InferenceSession.create(model);
  try {
    const out = await session.run({ x: new ort.Tensor('float32', x, [SMALL, ROWS]) });
    return out.y!.data as Float32Array;
  } finally {
    await session.release();
  }
}

test('the skeleton references the big initializer in place, keeps the small one, and computes the same outputs', async () => {
  const dir = tempDir();
  const { path: model } = writeMatMul(dir, 'model.onnx');
  const plan = await planSkeleton(model, 'weights.onnx');
  assert.ok(plan, 'a 2 MiB initializer is referenced');
  assert.is(plan!.referenced, 1, 'W only: B (4 KiB) stays inline');
  const skeletonDir = path.join(dir, 'skeleton');
  await mkdir(skeletonDir);
  await link(model, path.join(skeletonDir, 'weights.onnx'));
  await writeSkeleton(model, plan!, path.join(skeletonDir, 'model.onnx'));
  const size = (await stat(path.join(skeletonDir, 'model.onnx'))).size;
  assert.ok(size < 64 * 1024, `the skeleton holds no weights (${size} bytes)`);
  const x = Float32Array.from({ length: SMALL * ROWS }, (_, i) => Math.cos(i));
  assert.equal(await run(path.join(skeletonDir, 'model.onnx'), x), await run(model, x));
});

test('models with no big initializer need no skeleton', async () => {
  const dir = tempDir();
  const small = writeModel(dir, 'small.onnx', {
    name: 'g', node: [{ op_type: 'Identity', input: ['x'], output: ['y'] }],
    input: [{ name: 'x', type: tensorType(OnnxDataType.FLOAT, [2]) }],
    output: [{ name: 'y', type: tensorType(OnnxDataType.FLOAT, [2]) }],
  });
  assert.is(await planSkeleton(small, 'weights.onnx'), undefined);
});

test('the trial load through a skeleton passes a good model, fails an unknown operator and short weights, and cleans up', async () => {
  const dir = tempDir();
  const cache = path.join(dir, 'cache');
  const good = writeMatMul(dir, 'good.onnx').path;
  assert.equal(await verifyLoads(good, 'good.onnx', cache), { runtime: `onnxruntime-node ${createRequire(import.meta.url)('onnxruntime-node/package.json').version}` });

  const unknownOp = writeMatMul(dir, 'future.onnx', { op: 'NoSuchMatMul' }).path;
  await verifyLoads(unknownOp, 'future.onnx', cache).then(() => assert.unreachable('an unknown operator must fail'), (err: Error) => {
    assert.match(err.message, /^future\.onnx: onnxruntime-node [\d.]+ cannot load it: .*NoSuchMatMul/);
    assert.not.match(err.message, /skeleton/, 'the error names the model, not the load-check copy');
  });

  // W's raw_data one row short of its dims: the referenced length disagrees with the shape, as the full load finds.
  const short = writeMatMul(dir, 'short.onnx', { wBytes: (ROWS - 1) * COLS * 4 }).path;
  await verifyLoads(short, 'short.onnx', cache).then(() => assert.unreachable('short weights must fail'), (err: Error) => {
    assert.match(err.message, /^short\.onnx: onnxruntime-node [\d.]+ cannot load it: /);
  });

  const left = (await readdir(path.join(cache, 'onnx-load-checks'))).filter((n) => n.startsWith('skeleton-'));
  assert.equal(left, [], 'no skeleton directory is left behind');
  assert.ok((await stat(good)).nlink === 1, 'the hard link to the weights is gone');
});

test('model info is remembered by the file, and read again when the file changes', async () => {
  const dir = tempDir();
  const cache = path.join(dir, 'cache');
  const { path: model } = writeMatMul(dir, 'model.onnx');
  const first = await cachedOnnxModelInfo(model, 'model.onnx', cache);
  const entries = await readdir(path.join(cache, 'onnx-model-info'));
  assert.is(entries.length, 2, 'one entry by the file, one by its bytes');
  assert.equal(await cachedOnnxModelInfo(model, 'model.onnx', cache), first, 'the remembered info is the read info');
  for (const entry of entries) assert.equal(JSON.parse(await readFile(path.join(cache, 'onnx-model-info', entry), 'utf8')), first);
  await rm(model);
  writeMatMul(dir, 'model.onnx', { op: 'Gemm' });
  const changed = await cachedOnnxModelInfo(model, 'model.onnx', cache);
  assert.equal(changed.operators, { Gemm: 1, Add: 1 }, 'a replaced file is read again');
});

test('a copy of a checked model at another path is neither read nor loaded again (same bytes, same verdict)', async () => {
  const dir = tempDir();
  const cache = path.join(dir, 'cache');
  const first = writeMatMul(dir, 'first.onnx').path;
  const runtime = await verifyLoads(first, 'first.onnx', cache);
  const info = await cachedOnnxModelInfo(first, 'first.onnx', cache);
  assert.ok(runtime);
  const copy = path.join(dir, 'copy.onnx');
  await copyFile(first, copy);
  // No child can start now: a load of the copy would resolve undefined (onnxruntime could not run).
  const execPath = process.execPath;
  process.execPath = path.join(dir, 'no-such-node');
  try {
    assert.equal(await verifyLoads(copy, 'copy.onnx', cache), runtime, 'the verdict for these bytes stands');
  } finally {
    process.execPath = execPath;
  }
  assert.equal(await cachedOnnxModelInfo(copy, 'copy.onnx', cache), { ...info, path: copy });
  // Other bytes at the copy's path are checked afresh: the unknown operator is found.
  await rm(copy);
  await rename(writeMatMul(dir, 'other.onnx', { op: 'NoSuchMatMul' }).path, copy);
  await verifyLoads(copy, 'copy.onnx', cache).then(() => assert.unreachable('other bytes must be loaded'), (err: Error) => assert.match(err.message, /NoSuchMatMul/));
});

test.run();
