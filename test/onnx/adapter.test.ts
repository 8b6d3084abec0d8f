import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import * as ort from 'onnxruntime-node';
import { tensor, type Tensor, type InitContext } from '@pyml/contract';
import onnxAdapterFactory, { createOnnxAdapter } from '@pyml/plugin-onnx/adapter';
import OnnxPassThroughModel from '../../plugins/onnx/src/default-model.ts';
import { IRIS_DIR, adapterEnv, identityGraph, tempDir, writeModel, zipMapGraph, ML_OPSETS, OnnxDataType, silentLogger } from './helpers.ts';

const weightsDir = join(IRIS_DIR, 'weights');

function irisFeatures(): Float32Array {
  const rows = readFileSync(join(IRIS_DIR, 'data', 'iris.csv'), 'utf8').trim().split('\n').slice(1);
  return new Float32Array(rows.flatMap((r) => r.split(',').slice(0, 4).map(Number)));
}

test('adapter runs iris and matches onnxruntime-node called directly', async () => {
  const adapter = await onnxAdapterFactory(adapterEnv(weightsDir));
  const session = await adapter.load('model.onnx');
  assert.equal([...session.inputNames], ['input']);
  assert.equal([...session.outputNames], ['probabilities', 'label']);

  const x = irisFeatures();
  const ours = await session.run({ input: tensor('FP32', [150, 4], x) });
  const direct = await (await ort.InferenceSession.create(join(weightsDir, 'model.onnx'))).run({ input: new ort.Tensor('float32', x, [150, 4]) });

  assert.is(ours.probabilities.dtype, 'FP32');
  assert.equal(ours.probabilities.shape, [150, 3]);
  assert.equal([...(ours.probabilities.data as Float32Array)], [...(direct.probabilities.data as Float32Array)]);
  assert.is(ours.label.dtype, 'INT64');
  assert.equal(ours.label.shape, [150]);
  assert.instance(ours.label.data, BigInt64Array);
  assert.equal([...(ours.label.data as BigInt64Array)], [...(direct.label.data as BigInt64Array)]);

  const only = await session.run({ input: tensor('FP32', [1, 4], [5.1, 3.5, 1.4, 0.2]) }, ['label']);
  assert.equal(Object.keys(only), ['label']);
  assert.equal([...(only.label.data as BigInt64Array)], [0n]);
  await session.release();
});

test('tensors of every dtype round-trip through the adapter', async () => {
  const dir = tempDir();
  const cases: [number, Tensor][] = [
    [OnnxDataType.FLOAT, tensor('FP32', [2, 2], [1.5, -2, 3, 4])],
    [OnnxDataType.DOUBLE, tensor('FP64', [1, 2], [Math.PI, -1e300])],
    [OnnxDataType.FLOAT16, tensor('FP16', [1, 2], new Uint16Array([0x3c00, 0xc000]))], // 1.0, -2.0
    [OnnxDataType.INT64, tensor('INT64', [1, 2], new BigInt64Array([-(2n ** 62n), 7n]))],
    [OnnxDataType.INT32, tensor('INT32', [1, 2], [-5, 2 ** 31 - 1])],
    [OnnxDataType.INT8, tensor('INT8', [1, 2], [-128, 127])],
    [OnnxDataType.UINT8, tensor('UINT8', [1, 2], [0, 255])],
    [OnnxDataType.BOOL, tensor('BOOL', [2, 2], [1, 0, 0, 1])],
    [OnnxDataType.STRING, tensor('BYTES', [1, 2], ['héllo', ''])],
  ];
  for (const [elemType, input] of cases) {
    writeModel(dir, `identity-${elemType}.onnx`, identityGraph(elemType));
    const adapter = await onnxAdapterFactory(adapterEnv(dir));
    const session = await adapter.load(`identity-${elemType}.onnx`);
    const { y } = await session.run({ x: input });
    assert.is(y.dtype, input.dtype, `dtype for ${input.dtype}`);
    assert.equal(y.shape, input.shape, `shape for ${input.dtype}`);
    assert.is(y.data.constructor, input.data.constructor, `container for ${input.dtype}`);
    assert.equal(Array.from(y.data as ArrayLike<unknown>), Array.from(input.data as ArrayLike<unknown>), `data for ${input.dtype}`);
    await session.release();
  }
});

test('a ZipMap model: run fetches the tensor outputs only', async () => {
  const dir = tempDir();
  writeModel(dir, 'zipmap.onnx', zipMapGraph(), ML_OPSETS);
  const session = await (await onnxAdapterFactory(adapterEnv(dir))).load('zipmap.onnx');
  assert.equal([...session.outputNames], ['label', 'output_probability']);
  assert.equal([...session.tensorOutputNames], ['label']);
  const out = await session.run({ x: tensor('FP32', [2, 3], [0.1, 0.7, 0.2, 0.5, 0.3, 0.2]) });
  assert.equal(Object.keys(out), ['label']);
  assert.equal([...(out.label.data as BigInt64Array)], [1n, 0n]);
});

test('bad feeds name the input; bad files name the file', async () => {
  const adapter = await onnxAdapterFactory(adapterEnv(weightsDir));
  const session = await adapter.load('model.onnx');
  try {
    await session.run({ inputs: tensor('FP32', [1, 4], [1, 2, 3, 4]) });
    assert.unreachable();
  } catch (e) { assert.match((e as Error).message, /unknown input "inputs"; the model's inputs are input/); }
  try {
    await session.run({});
    assert.unreachable();
  } catch (e) { assert.match((e as Error).message, /missing input "input"/); }
  try {
    await adapter.load('nope.onnx');
    assert.unreachable();
  } catch (e) { assert.match((e as Error).message, /^onnx: cannot load nope\.onnx: /); }
});

test('threads: option, PYML_ORT_THREADS and bad values', async () => {
  const logged: Record<string, unknown>[] = [];
  const env = { ...adapterEnv(weightsDir), logger: { ...silentLogger, info: (_: string, f?: Record<string, unknown>) => { logged.push(f ?? {}); } } };
  const withOption = await createOnnxAdapter({ threads: 2 })(env);
  await (await withOption.load('model.onnx')).release();
  process.env.PYML_ORT_THREADS = '3';
  try {
    await (await withOption.load('model.onnx')).release();
    await (await withOption.load('model.onnx', { threads: 1 })).release();
    process.env.PYML_ORT_THREADS = 'many';
    try {
      await withOption.load('model.onnx');
      assert.unreachable();
    } catch (e) { assert.match((e as Error).message, /PYML_ORT_THREADS must be a non-negative integer, got "many"/); }
  } finally {
    delete process.env.PYML_ORT_THREADS;
  }
  assert.equal(logged.map((f) => f.threads), [2, 3, 1]);
});

test('the default model passes tensors through the single .onnx file', async () => {
  const adapter = await onnxAdapterFactory(adapterEnv(weightsDir));
  const ctx: InitContext = {
    ...adapterEnv(weightsDir),
    adapter: <T>(name: string) => { assert.is(name, 'onnx'); return adapter as T; },
  };
  const model = new OnnxPassThroughModel();
  await model.init(ctx);
  const out = await model.predict({ input: tensor('FP32', [2, 4], [5.1, 3.5, 1.4, 0.2, 6.7, 3.0, 5.2, 2.3]) });
  assert.equal([...(out.label.data as BigInt64Array)], [0n, 2n]);
  await model.close();

  const empty = tempDir();
  const none = new OnnxPassThroughModel();
  try {
    await none.init({ ...ctx, ...adapterEnv(empty) });
    assert.unreachable();
  } catch (e) { assert.match((e as Error).message, /expected exactly one \.onnx file in .*, found none/); }
});

test.run();
