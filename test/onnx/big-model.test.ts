import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { createHash } from 'node:crypto';
import { createReadStream, statSync } from 'node:fs';
import { join } from 'node:path';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import * as ort from 'onnxruntime-node';
import { readOnnxModel } from '../../plugins/onnx/src/onnx-reader.ts';
import { onnxSignature } from '../../plugins/onnx/src/onnx-signature.ts';
import { writeBigOnnx } from '../../bench/make-big-onnx.ts';
import { tempDir } from './helpers.ts';

setFlagsFromString('--expose-gc');
const gc = runInNewContext('gc') as () => void;

const dir = tempDir();
const big = join(dir, 'big.onnx');
const MB = 50;
let weightBytes = 0;

async function sha256(path: string): Promise<string> {
  const hash = createHash('sha256');
  for await (const chunk of createReadStream(path)) hash.update(chunk);
  return hash.digest('hex');
}

test('make-big-onnx streams a valid model of the requested size, deterministically', async () => {
  const r = await writeBigOnnx(big, { mb: MB, seed: 7 });
  weightBytes = r.weightBytes;
  assert.is(statSync(big).size, r.bytes);
  assert.ok(r.weightBytes >= MB * 2 ** 20 * 0.99 && r.bytes < MB * 2 ** 20 * 1.01, `size ${r.bytes}`);
  const again = await writeBigOnnx(join(dir, 'again.onnx'), { mb: MB, seed: 7 });
  assert.is(again.bytes, r.bytes);
  assert.is(await sha256(join(dir, 'again.onnx')), await sha256(big));

  const session = await ort.InferenceSession.create(big);
  const out = await session.run({ input: new ort.Tensor('float32', new Float32Array(1024).fill(1), [1, 1024]) });
  assert.equal(out.output.dims, [1, r.columns]);
  await session.release();
});

test('describing a 50 MB model reads its interface without holding its weights', async () => {
  const size = statSync(big).size;
  gc();
  const before = process.memoryUsage();
  const info = await readOnnxModel(big);
  const after = process.memoryUsage();
  const heapDelta = after.heapUsed - before.heapUsed;
  const bufferDelta = after.arrayBuffers - before.arrayBuffers;
  assert.ok(heapDelta < size / 50, `heapUsed grew by ${heapDelta} bytes for a ${size}-byte file`);
  assert.ok(bufferDelta < size / 50, `arrayBuffers grew by ${bufferDelta} bytes for a ${size}-byte file`);

  assert.is(info.initializerCount, 1);
  assert.is(info.initializerBytes, weightBytes); // counted from the length prefix, never read
  assert.equal(onnxSignature(info).signature.inputs, [{ name: 'input', dtype: 'FP32', shape: [-1, 1024] }]);
  assert.equal(info.operators, { MatMul: 1 });
});

test.run();
