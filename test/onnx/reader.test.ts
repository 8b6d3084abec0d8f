import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import * as ort from 'onnxruntime-node';
import { readOnnxModel, OnnxFormatError } from '../../plugins/onnx/src/onnx-reader.ts';
import { onnxSignature, formatOnnxType } from '../../plugins/onnx/src/onnx-signature.ts';
import { IRIS_MODEL, tempDir, writeModel, tensorType, OnnxDataType } from './helpers.ts';

ort.env.logLevel = 'error'; // the initializer-as-input model warns, on purpose
const dir = tempDir();

async function rejects(p: Promise<unknown>, pattern: RegExp): Promise<Error> {
  try { await p; } catch (error) {
    assert.match((error as Error).message, pattern);
    return error as Error;
  }
  assert.unreachable(`expected a rejection matching ${pattern}`);
  throw new Error('unreachable');
}

test('iris: signature inferred with OIP dtypes and -1 for the symbolic batch dim', async () => {
  const info = await readOnnxModel(IRIS_MODEL);
  const { signature, nonTensor, unknownRank } = onnxSignature(info);
  assert.equal(signature, {
    inputs: [{ name: 'input', dtype: 'FP32', shape: [-1, 4] }],
    outputs: [{ name: 'probabilities', dtype: 'FP32', shape: [-1, 3] }, { name: 'label', dtype: 'INT64', shape: [-1] }],
  });
  assert.equal(nonTensor, []);
  assert.equal(unknownRank, []);
  assert.is(info.irVersion, 7);
  assert.equal(info.opsets, [{ domain: '', version: 13 }]);
  assert.is(info.producerName, 'pyml-example-onnx-iris');
  assert.equal(info.operators, { Gemm: 2, Relu: 1, Softmax: 1, ArgMax: 1 });
  assert.is(info.initializerCount, 4);
  assert.is(info.initializerBytes, (4 * 8 + 8 + 8 * 3 + 3) * 4);
  assert.equal(info.metadata, { labels: 'setosa,versicolor,virginica' });
});

test('every OIP-mappable ONNX element type maps to its OIP name', async () => {
  const cases: [number, string][] = [
    [OnnxDataType.FLOAT, 'FP32'], [OnnxDataType.DOUBLE, 'FP64'], [OnnxDataType.FLOAT16, 'FP16'], [OnnxDataType.INT64, 'INT64'],
    [OnnxDataType.INT32, 'INT32'], [OnnxDataType.INT16, 'INT16'], [OnnxDataType.INT8, 'INT8'], [OnnxDataType.UINT8, 'UINT8'],
    [OnnxDataType.UINT16, 'UINT16'], [OnnxDataType.UINT32, 'UINT32'], [OnnxDataType.UINT64, 'UINT64'], [OnnxDataType.BOOL, 'BOOL'],
    [OnnxDataType.STRING, 'BYTES'],
  ];
  const path = writeModel(dir, 'dtypes.onnx', {
    name: 'dtypes',
    node: cases.map((_, i) => ({ op_type: 'Identity', input: [`x${i}`], output: [`y${i}`] })),
    input: cases.map(([t], i) => ({ name: `x${i}`, type: tensorType(t, [2, 'batch', 3]) })),
    output: cases.map(([t], i) => ({ name: `y${i}`, type: tensorType(t, [2, 'batch', 3]) })),
  });
  const { signature } = onnxSignature(await readOnnxModel(path));
  assert.equal(signature.inputs.map((s) => s.dtype), cases.map(([, d]) => d));
  assert.equal(signature.inputs[0].shape, [2, -1, 3]);
  // onnxruntime agrees the file is a valid model
  const session = await ort.InferenceSession.create(path);
  assert.is(session.inputNames.length, cases.length);
});

test('graph inputs backed by an initializer are not model inputs', async () => {
  const bias = new Uint8Array(new Float32Array([10, 20]).buffer);
  const path = writeModel(dir, 'init-input.onnx', {
    name: 'add_bias',
    node: [{ op_type: 'Add', input: ['x', 'bias'], output: ['y'] }],
    initializer: [{ name: 'bias', dims: [2], data_type: OnnxDataType.FLOAT, raw_data: bias }],
    input: [{ name: 'x', type: tensorType(OnnxDataType.FLOAT, ['N', 2]) }, { name: 'bias', type: tensorType(OnnxDataType.FLOAT, [2]) }],
    output: [{ name: 'y', type: tensorType(OnnxDataType.FLOAT, ['N', 2]) }],
  });
  const info = await readOnnxModel(path);
  assert.equal(info.inputs.map((i) => i.name), ['x']);
  assert.equal(info.initializerInputs, ['bias']);
  assert.equal(onnxSignature(info).signature.inputs, [{ name: 'x', dtype: 'FP32', shape: [-1, 2] }]);
  // and the model indeed runs without feeding `bias`
  const session = await ort.InferenceSession.create(path);
  const out = await session.run({ x: new ort.Tensor('float32', new Float32Array([1, 2]), [1, 2]) });
  assert.equal([...(out.y.data as Float32Array)], [11, 22]);
});

test('sparse initializers count as initializers too', async () => {
  const path = writeModel(dir, 'sparse.onnx', {
    name: 'sparse',
    node: [{ op_type: 'Add', input: ['x', 'w'], output: ['y'] }],
    sparse_initializer: [{
      dims: [4],
      values: { name: 'w', dims: [1], data_type: OnnxDataType.FLOAT, float_data: [5] },
      indices: { dims: [1], data_type: OnnxDataType.INT64, int64_data: [2] },
    }],
    input: [{ name: 'x', type: tensorType(OnnxDataType.FLOAT, [4]) }, { name: 'w', type: tensorType(OnnxDataType.FLOAT, [4]) }],
    output: [{ name: 'y', type: tensorType(OnnxDataType.FLOAT, [4]) }],
  });
  const info = await readOnnxModel(path);
  assert.equal(info.inputs.map((i) => i.name), ['x']);
  assert.equal(info.initializerInputs, ['w']);
  const session = await ort.InferenceSession.create(path);
  const out = await session.run({ x: new ort.Tensor('float32', new Float32Array([1, 1, 1, 1]), [4]) });
  assert.equal([...(out.y.data as Float32Array)], [1, 1, 6, 1]);
});

test('ZipMap-style seq(map) outputs are reported, not put in the signature', async () => {
  const path = writeModel(dir, 'zipmap.onnx', {
    name: 'classifier',
    node: [{ op_type: 'Identity', input: ['x'], output: ['label'] }],
    input: [{ name: 'x', type: tensorType(OnnxDataType.INT64, ['N']) }],
    output: [
      { name: 'label', type: tensorType(OnnxDataType.INT64, ['N']) },
      { name: 'output_probability', type: { sequence_type: { elem_type: { map_type: { key_type: OnnxDataType.INT64, value_type: tensorType(OnnxDataType.FLOAT) } } } } },
    ],
  });
  const { signature, nonTensor } = onnxSignature(await readOnnxModel(path));
  assert.equal(signature.outputs, [{ name: 'label', dtype: 'INT64', shape: [-1] }]);
  assert.is(nonTensor.length, 1);
  assert.is(nonTensor[0].name, 'output_probability');
  assert.is(nonTensor[0].type, 'seq(map(int64,tensor(float)))');
  assert.match(nonTensor[0].reason, /sequence values have no tensor form/);
});

test('unmappable element types and unknown ranks are reported', async () => {
  const path = writeModel(dir, 'odd.onnx', {
    name: 'odd',
    node: [{ op_type: 'Identity', input: ['x'], output: ['y'] }, { op_type: 'Identity', input: ['b'], output: ['z'] }],
    input: [{ name: 'x', type: tensorType(OnnxDataType.FLOAT) }, { name: 'b', type: tensorType(OnnxDataType.BFLOAT16, [2]) }],
    output: [{ name: 'y', type: tensorType(OnnxDataType.FLOAT) }, { name: 'z', type: tensorType(OnnxDataType.BFLOAT16, [2]) }],
  });
  const { signature, nonTensor, unknownRank } = onnxSignature(await readOnnxModel(path));
  assert.equal(signature.inputs, [{ name: 'x', dtype: 'FP32', shape: [-1] }]);
  assert.equal(unknownRank, ['x', 'y']);
  assert.equal(nonTensor.map((v) => `${v.role}:${v.name}`), ['input:b', 'output:z']);
  assert.match(nonTensor[0].reason, /bfloat16 has no Open Inference Protocol dtype/);
  assert.is(formatOnnxType({ kind: 'tensor', elemType: OnnxDataType.FLOAT, shape: ['N', 4] }), 'tensor(float)[N,4]');
});

test('a truncated model is an error naming the file, the problem and the byte', async () => {
  const bytes = readFileSync(IRIS_MODEL);
  const path = join(dir, 'truncated.onnx');
  writeFileSync(path, bytes.subarray(0, bytes.length - 100));
  const error = await rejects(readOnnxModel(path, 'weights/truncated.onnx'), /^weights\/truncated\.onnx: not an ONNX model: truncated field: needs \d+ bytes but file ends at \d+ at byte \d+/);
  assert.instance(error, OnnxFormatError);
});

test('non-ONNX files: text, empty, zip, random bytes, a protobuf without a graph', async () => {
  const text = join(dir, 'notes.onnx');
  writeFileSync(text, 'hello, this is not a model\n');
  await rejects(readOnnxModel(text), new RegExp(`^${text}: not an ONNX model: .* at byte \\d+ \\(it looks like a text file\\)`));

  const empty = join(dir, 'empty.onnx');
  writeFileSync(empty, '');
  await rejects(readOnnxModel(empty), /empty\.onnx: not an ONNX model: file is empty/);

  const zip = join(dir, 'model.pt.onnx');
  writeFileSync(zip, Buffer.concat([Buffer.from('PK\x03\x04', 'latin1'), Buffer.alloc(60, 7)]));
  await rejects(readOnnxModel(zip), /model\.pt\.onnx: not an ONNX model: .*zip archive/);

  const random = join(dir, 'random.onnx');
  writeFileSync(random, Buffer.from([0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff]));
  await rejects(readOnnxModel(random), /random\.onnx: not an ONNX model: malformed varint at byte 0/);

  // A valid protobuf that is a ModelProto header and nothing else.
  const headerOnly = join(dir, 'header-only.onnx');
  writeFileSync(headerOnly, Buffer.from([0x08, 0x07, 0x12, 0x01, 0x78]));
  await rejects(readOnnxModel(headerOnly), /header-only\.onnx: not an ONNX model: has no graph \(ModelProto field 7\)/);

  // Field 7 with the wrong wire type (e.g. some other protobuf schema).
  const wrongWire = join(dir, 'wrong-wire.onnx');
  writeFileSync(wrongWire, Buffer.from([0x08, 0x07, 0x38, 0x01]));
  await rejects(readOnnxModel(wrongWire), /wrong-wire\.onnx: not an ONNX model: field 7 \(graph\) has wire type varint, expected length-delimited at byte 2/);

  await rejects(readOnnxModel(join(dir, 'missing.onnx')), /missing\.onnx: cannot open: ENOENT/);
});

test('initializers stored as external data are listed', async () => {
  const path = writeModel(dir, 'external.onnx', {
    name: 'ext',
    node: [{ op_type: 'Add', input: ['x', 'w'], output: ['y'] }],
    initializer: [{ name: 'w', dims: [2], data_type: OnnxDataType.FLOAT, data_location: 1, external_data: [{ key: 'location', value: 'weights.bin' }, { key: 'length', value: '8' }] }],
    input: [{ name: 'x', type: tensorType(OnnxDataType.FLOAT, [2]) }],
    output: [{ name: 'y', type: tensorType(OnnxDataType.FLOAT, [2]) }],
  });
  const info = await readOnnxModel(path);
  assert.equal(info.externalData, ['weights.bin']);
  assert.is(info.initializerCount, 1);
});

test('operators are counted across small and large nodes, with their domain', async () => {
  const big = new Uint8Array(new Float32Array(20000).fill(0.5).buffer); // an 80 KB Constant: walked, not buffered
  const chain = Array.from({ length: 5000 }, (_, i) => ({ op_type: 'Relu', input: [i ? `t${i - 1}` : 'sum'], output: [`t${i}`] }));
  const path = writeModel(dir, 'deep.onnx', {
    name: 'deep',
    node: [
      { op_type: 'Constant', output: ['c'], attribute: [{ name: 'value', type: 4, t: { dims: [20000], data_type: OnnxDataType.FLOAT, raw_data: big } }] },
      { op_type: 'Add', input: ['x', 'c'], output: ['sum'] },
      ...chain,
      { op_type: 'Identity', input: ['t4999'], output: ['y'] },
      { op_type: 'Scaler', domain: 'ai.onnx.ml', input: ['x'], output: ['scaled'], attribute: [{ name: 'scale', type: 6, floats: [2] }, { name: 'offset', type: 6, floats: [0] }] },
    ],
    input: [{ name: 'x', type: tensorType(OnnxDataType.FLOAT, [20000]) }],
    output: [{ name: 'y', type: tensorType(OnnxDataType.FLOAT, [20000]) }, { name: 'scaled', type: tensorType(OnnxDataType.FLOAT, [20000]) }],
  }, [{ domain: '', version: 13 }, { domain: 'ai.onnx.ml', version: 3 }]);
  const info = await readOnnxModel(path);
  assert.equal(info.operators, { Constant: 1, Add: 1, Relu: 5000, Identity: 1, 'ai.onnx.ml:Scaler': 1 });
  assert.is(info.nodeCount, 5004);
  assert.equal(info.opsets, [{ domain: '', version: 13 }, { domain: 'ai.onnx.ml', version: 3 }]);
  const session = await ort.InferenceSession.create(path);
  const out = await session.run({ x: new ort.Tensor('float32', new Float32Array(20000).fill(1), [20000]) });
  assert.is((out.y.data as Float32Array)[0], 1.5);
  assert.is((out.scaled.data as Float32Array)[0], 2);
});

test('a node whose bytes are corrupt is an error with its offset', async () => {
  // graph { node { op_type: <length 50, but only 2 bytes follow inside the node> } }
  const node = Buffer.from([0x22, 0x32, 0x41, 0x42]);
  const graph = Buffer.concat([Buffer.from([0x0a, node.length]), node]);
  const path = join(dir, 'bad-node.onnx');
  writeFileSync(path, Buffer.concat([Buffer.from([0x08, 0x07, 0x3a, graph.length]), graph]));
  await rejects(readOnnxModel(path), /bad-node\.onnx: not an ONNX model: truncated field: needs 50 bytes but its message ends at 10 at byte 7/);
});

test.run();
