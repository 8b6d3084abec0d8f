import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { existsSync, mkdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { basename, join } from 'node:path';
import { tensor } from '@pyml/contract';
import type { BundleOptions, PymlPlugin, WeightsFile } from '@pyml/core/types';
import onnx, { type OnnxAdapter } from '@pyml/plugin-onnx';
import { IRIS_DIR, IRIS_MODEL, adapterEnv, hookContext, tempDir, writeModel, tensorType, zipMapGraph, ML_OPSETS, OnnxDataType } from './helpers.ts';

const weightsFile = (path: string): WeightsFile => ({ path, name: basename(path), size: statSync(path).size });

async function rejects(run: () => unknown, pattern: RegExp): Promise<void> {
  try { await run(); } catch (error) { assert.match((error as Error).message, pattern); return; }
  assert.unreachable(`expected a rejection matching ${pattern}`);
}

test('the plugin object: name, api version and its hooks', () => {
  const plugin: PymlPlugin = onnx();
  assert.is(plugin.name, 'onnx');
  assert.is(plugin.apiVersion, 1);
  assert.is(plugin.version, '0.1.0');
  for (const hook of ['describeWeights', 'defaultModel', 'bundleOptions', 'dependencies', 'runtimeAdapter'] as const) assert.type(plugin[hook], 'function');
  assert.throws(() => onnx({ threads: -1 }), /onnx\(\{ threads \}\): expected a non-negative integer, got -1/);
});

test('describeWeights: iris signature and details; other files are not ours', async () => {
  const ctx = hookContext(IRIS_DIR, [IRIS_MODEL]);
  const d = await onnx().describeWeights!(weightsFile(IRIS_MODEL), ctx);
  assert.ok(d);
  assert.is(d.format, 'onnx');
  assert.equal(d.signature!.inputs, [{ name: 'input', dtype: 'FP32', shape: [-1, 4] }]);
  assert.equal(d.signature!.outputs.map((o) => o.name), ['probabilities', 'label']);
  assert.equal(d.details, {
    irVersion: 7, opsets: 'ai.onnx:13', producer: 'pyml-example-onnx-iris 1.0.0', graph: 'iris_mlp', nodes: 5,
    operators: 'ArgMax,Gemm,Relu,Softmax', initializers: 4, initializerBytes: 268, loadedWith: 'onnxruntime-node 1.30.0',
  });
  assert.is(await onnx().describeWeights!(weightsFile(join(IRIS_DIR, 'data', 'iris.csv')), ctx), undefined);
});

test('describeWeights: a corrupt model is a build error naming the file relative to the project', async () => {
  const root = tempDir();
  const path = join(root, 'weights', 'model.onnx');
  const bytes = readFileSync(IRIS_MODEL);
  mkdirSync(join(root, 'weights'));
  writeFileSync(path, bytes.subarray(0, 300));
  await rejects(() => onnx().describeWeights!(weightsFile(path), hookContext(root, [path])), /^weights\/model\.onnx: not an ONNX model: truncated field: needs \d+ bytes but file ends at 300 at byte \d+$/);
});

test('describeWeights: ZipMap outputs go to details; all-non-tensor outputs and non-tensor inputs are errors', async () => {
  const root = tempDir();
  const seqMap = { sequence_type: { elem_type: { map_type: { key_type: OnnxDataType.INT64, value_type: tensorType(OnnxDataType.FLOAT) } } } };
  const mixed = writeModel(root, 'mixed.onnx', zipMapGraph(), ML_OPSETS);
  const ctx = hookContext(root, [mixed]);
  const d = await onnx().describeWeights!(weightsFile(mixed), ctx);
  assert.equal(d!.signature!.outputs, [{ name: 'label', dtype: 'INT64', shape: [-1] }]);
  assert.is(d!.details!.nonTensorOutputs, 'output_probability: seq(map(int64,tensor(float)))');
  assert.is(d!.details!.opsets, 'ai.onnx:13,ai.onnx.ml:1');
  assert.is(d!.details!.operators, 'ArgMax,ai.onnx.ml:ZipMap');
  assert.match(ctx.logs.join('\n'), /outputs left out of the signature \(not tensors\): output_probability/);

  const onlyMap = writeModel(root, 'only-map.onnx', {
    name: 'g', node: [], input: [{ name: 'x', type: tensorType(OnnxDataType.INT64, ['N']) }],
    output: [{ name: 'output_probability', type: seqMap }],
  });
  await rejects(() => onnx().describeWeights!(weightsFile(onlyMap), hookContext(root, [onlyMap])), /^only-map\.onnx: no output is a tensor \("output_probability": seq\(map\(int64,tensor\(float\)\)\)\); .*zipmap=False/);

  const mapIn = writeModel(root, 'map-in.onnx', {
    name: 'g', node: [], input: [{ name: 'features', type: { map_type: { key_type: OnnxDataType.STRING, value_type: tensorType(OnnxDataType.FLOAT) } } }],
    output: [{ name: 'y', type: tensorType(OnnxDataType.FLOAT, ['N']) }],
  });
  await rejects(() => onnx().describeWeights!(weightsFile(mapIn), hookContext(root, [mapIn])), /^map-in\.onnx: input "features" is map\(string,tensor\(float\)\) .*tensor inputs only/);
});

test('describeWeights: external data must be among the weights', async () => {
  const root = tempDir();
  const path = writeModel(root, 'ext.onnx', {
    name: 'g', node: [{ op_type: 'Add', input: ['x', 'w'], output: ['y'] }],
    initializer: [{ name: 'w', dims: [2], data_type: OnnxDataType.FLOAT, data_location: 1, external_data: [{ key: 'location', value: 'ext.bin' }] }],
    input: [{ name: 'x', type: tensorType(OnnxDataType.FLOAT, [2]) }],
    output: [{ name: 'y', type: tensorType(OnnxDataType.FLOAT, [2]) }],
  });
  await rejects(() => onnx().describeWeights!(weightsFile(path), hookContext(root, [path])), /^ext\.onnx: initializers are stored in external file "ext\.bin", which the config's weights do not include/);
  const d = await onnx().describeWeights!(weightsFile(path), hookContext(root, [path, join(root, 'ext.bin')]));
  assert.is(d!.details!.externalData, 'ext.bin');
});

test('describeWeights: onnxruntime trial-loads the model, so unsupported operators fail the build', async () => {
  const root = tempDir();
  const path = writeModel(root, 'future.onnx', {
    name: 'g', node: [{ op_type: 'NoSuchOperator', input: ['x'], output: ['y'] }],
    input: [{ name: 'x', type: tensorType(OnnxDataType.FLOAT, [2]) }],
    output: [{ name: 'y', type: tensorType(OnnxDataType.FLOAT, [2]) }],
  });
  await rejects(() => onnx().describeWeights!(weightsFile(path), hookContext(root, [path])), /^future\.onnx: onnxruntime-node 1\.30\.0 cannot load it: .*NoSuchOperator/);
  const ctx = hookContext(root, [path]);
  const parsedOnly = await onnx({ loadCheckMaxMB: 0 }).describeWeights!(weightsFile(path), ctx);
  assert.equal(parsedOnly!.signature!.inputs, [{ name: 'x', dtype: 'FP32', shape: [2] }]);
  assert.is(parsedOnly!.details!.loadedWith, undefined);
  const tooBig = await onnx({ loadCheckMaxMB: 0.00001 }).describeWeights!(weightsFile(path), ctx);
  assert.is(tooBig!.details!.loadedWith, undefined);
  assert.match(ctx.logs.join('\n'), /future\.onnx: trial load skipped \(0 MB is over loadCheckMaxMB\)/);
  assert.throws(() => onnx({ loadCheckMaxMB: -1 }), /loadCheckMaxMB.*got -1/);
});

test('defaultModel: supplies the pass-through model for exactly one .onnx file', async () => {
  const plugin = onnx();
  const source = await plugin.defaultModel!(hookContext(IRIS_DIR, [IRIS_MODEL]));
  assert.equal(source, { entry: new URL('../../plugins/onnx/src/default-model.ts', import.meta.url).pathname, kind: 'tensor' });
  assert.ok(existsSync(source!.entry));
  assert.is(await plugin.defaultModel!(hookContext(IRIS_DIR, [IRIS_MODEL], { model: join(IRIS_DIR, 'src/model.ts') })), undefined);
  assert.is(await plugin.defaultModel!(hookContext(IRIS_DIR, [join(IRIS_DIR, 'data/iris.csv')])), undefined);
  await rejects(() => plugin.defaultModel!(hookContext(IRIS_DIR, ['/a/one.onnx', '/a/two.onnx'])), /no model and 2 \.onnx weights \(one\.onnx, two\.onnx\)/);
});

test('bundleOptions: onnxruntime packages stay external, nothing else changes', async () => {
  const before: BundleOptions = { external: ['sharp'], plugins: [], define: { X: '1' } };
  const after = (await onnx().bundleOptions!(before, hookContext(IRIS_DIR, [IRIS_MODEL]))) as BundleOptions;
  assert.equal(after.external, ['sharp', 'onnxruntime-node', 'onnxruntime-common']);
  assert.equal(after.define, { X: '1' });
  const twice = (await onnx().bundleOptions!(after, hookContext(IRIS_DIR, [IRIS_MODEL]))) as BundleOptions;
  assert.equal(twice.external, after.external);
});

test('dependencies: one onnxruntime-node layer for the target platform', async () => {
  const ctx = hookContext(IRIS_DIR, [IRIS_MODEL]);
  const layers = await onnx().dependencies!({ ...ctx, platform: { os: 'linux', architecture: 'arm64' } });
  assert.is(layers.length, 1);
  assert.is(layers[0].name, 'onnxruntime-node');
  assert.ok(layers[0].files.some((f) => f.path.endsWith('/linux/arm64/onnxruntime_binding.node')));
});

test('runtimeAdapter: the adapter module, or a generated entry that bakes in the threads option', async () => {
  const root = tempDir();
  const ctx = hookContext(root, [IRIS_MODEL]);
  const plain = await onnx().runtimeAdapter!(ctx);
  assert.equal(plain, { name: 'onnx', entry: new URL('../../plugins/onnx/src/adapter.ts', import.meta.url).pathname, external: ['onnxruntime-node'] });

  const threaded = await onnx({ threads: 2 }).runtimeAdapter!(ctx);
  assert.is(threaded!.entry, join(ctx.cacheDir, 'onnx', 'adapter-threads-2.ts'));
  assert.match(readFileSync(threaded!.entry, 'utf8'), /createOnnxAdapter\(\{"threads":2\}\)/);
  const logged: unknown[] = [];
  const env = { ...adapterEnv(join(IRIS_DIR, 'weights')), logger: { debug() {}, warn() {}, error() {}, info: (_: string, f?: Record<string, unknown>) => { logged.push(f?.threads); } } };
  const factory = (await import(threaded!.entry)).default;
  const adapter: OnnxAdapter = await factory(env);
  const session = await adapter.load('model.onnx');
  const out = await session.run({ input: tensor('FP32', [1, 4], [6.7, 3.0, 5.2, 2.3]) });
  assert.equal([...(out.label.data as BigInt64Array)], [2n]);
  assert.equal(logged, [2]);
});

test.run();
