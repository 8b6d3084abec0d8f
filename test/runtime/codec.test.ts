import { join } from 'node:path';
import protobuf from 'protobufjs';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import type { Tensor } from '@pyml/contract';
import {
  InvalidInputError, decodeInferRequest, decodeInferResponse, decodeModelMetadata, encodeInferRequest,
  encodeInferResponse, encodeModelMetadata, readModelName,
} from '@pyml/runtime';
import { PROTO_DIR } from './fixtures.ts';

// The reference: protobufjs reflection over proto/grpc_predict_v2.proto, independent of the hand-written codec.
const root = protobuf.loadSync(join(PROTO_DIR, 'grpc_predict_v2.proto'));
const RequestType = root.lookupType('inference.ModelInferRequest');
const ResponseType = root.lookupType('inference.ModelInferResponse');
const MetadataType = root.lookupType('inference.ModelMetadataResponse');
const asObject = (t: protobuf.Type, bytes: Uint8Array) => t.toObject(t.decode(bytes), { longs: String, bytes: Buffer, defaults: false });

/** One tensor of every dtype with typed contents, in reference (protobufjs) form and in contract form. */
const CASES: { name: string; datatype: string; contents: Record<string, unknown>; tensor: Tensor }[] = [
  { name: 'b', datatype: 'BOOL', contents: { boolContents: [true, false, true] }, tensor: { dtype: 'BOOL', shape: [3], data: Uint8Array.from([1, 0, 1]) } },
  { name: 'i8', datatype: 'INT8', contents: { intContents: [-128, 0, 127] }, tensor: { dtype: 'INT8', shape: [3], data: Int8Array.from([-128, 0, 127]) } },
  { name: 'i16', datatype: 'INT16', contents: { intContents: [-32768, 5] }, tensor: { dtype: 'INT16', shape: [2], data: Int16Array.from([-32768, 5]) } },
  { name: 'i32', datatype: 'INT32', contents: { intContents: [-1, 2147483647, -2147483648] }, tensor: { dtype: 'INT32', shape: [3], data: Int32Array.from([-1, 2147483647, -2147483648]) } },
  { name: 'i64', datatype: 'INT64', contents: { int64Contents: ['-1', '9223372036854775807', '-9223372036854775808', '0'] }, tensor: { dtype: 'INT64', shape: [2, 2], data: BigInt64Array.from([-1n, 2n ** 63n - 1n, -(2n ** 63n), 0n]) } },
  { name: 'u8', datatype: 'UINT8', contents: { uintContents: [0, 255] }, tensor: { dtype: 'UINT8', shape: [2], data: Uint8Array.from([0, 255]) } },
  { name: 'u16', datatype: 'UINT16', contents: { uintContents: [65535] }, tensor: { dtype: 'UINT16', shape: [1], data: Uint16Array.from([65535]) } },
  { name: 'u32', datatype: 'UINT32', contents: { uintContents: [4294967295, 1] }, tensor: { dtype: 'UINT32', shape: [2], data: Uint32Array.from([4294967295, 1]) } },
  { name: 'u64', datatype: 'UINT64', contents: { uint64Contents: ['18446744073709551615', '1'] }, tensor: { dtype: 'UINT64', shape: [2], data: BigUint64Array.from([2n ** 64n - 1n, 1n]) } },
  { name: 'f32', datatype: 'FP32', contents: { fp32Contents: [1.5, -0, Infinity] }, tensor: { dtype: 'FP32', shape: [3], data: Float32Array.from([1.5, -0, Infinity]) } },
  { name: 'f64', datatype: 'FP64', contents: { fp64Contents: [Math.PI, -1e300] }, tensor: { dtype: 'FP64', shape: [1, 2], data: Float64Array.from([Math.PI, -1e300]) } },
  { name: 's', datatype: 'BYTES', contents: { bytesContents: [Buffer.from('héllo'), Buffer.from('')] }, tensor: { dtype: 'BYTES', shape: [2], data: ['héllo', ''] } },
];

const plain = (t: Tensor) => ({ dtype: t.dtype, shape: t.shape, data: Array.from(t.data as ArrayLike<unknown>) });

test('decodes every typed contents field a reference encoder writes', () => {
  const bytes = RequestType.encode(RequestType.fromObject({
    modelName: 'm', modelVersion: '3', id: 'abc',
    parameters: { flag: { boolParam: true }, big: { int64Param: '-5' }, s: { stringParam: 'v' }, d: { doubleParam: 0.5 } },
    inputs: CASES.map((c) => ({ name: c.name, datatype: c.datatype, shape: c.tensor.shape, contents: c.contents })),
    outputs: [{ name: 'out', parameters: { binary_data: { boolParam: true } } }],
  })).finish();
  const req = decodeInferRequest(bytes);
  assert.is(req.modelName, 'm');
  assert.is(req.modelVersion, '3');
  assert.is(req.id, 'abc');
  assert.equal(req.parameters, { flag: true, big: -5, s: 'v', d: 0.5 });
  assert.equal(req.outputs, [{ name: 'out', parameters: { binary_data: true } }]);
  assert.is(req.raw, false);
  assert.equal(req.inputs.map((t) => t.name), CASES.map((c) => c.name));
  req.inputs.forEach((t, i) => {
    assert.equal(plain(t.tensor), plain(CASES[i].tensor), CASES[i].name);
    assert.is(t.tensor.data.constructor, CASES[i].tensor.data.constructor, CASES[i].name);
  });
  assert.is(readModelName(bytes), 'm');
});

test('encodes requests and responses a reference decoder reads, typed and raw', () => {
  const inputs = CASES.map((c) => ({ name: c.name, tensor: c.tensor }));
  const typed = asObject(RequestType, encodeInferRequest({ modelName: 'm', inputs, parameters: { raw_output: true, n: 7 } }));
  assert.is(typed.modelName, 'm');
  assert.equal(typed.parameters.raw_output, { boolParam: true });
  assert.equal(typed.parameters.n, { int64Param: '7' });
  typed.inputs.forEach((t: { name: string; datatype: string; shape: string[]; contents: Record<string, unknown> }, i: number) => {
    assert.is(t.name, CASES[i].name);
    assert.is(t.datatype, CASES[i].datatype);
    assert.equal(t.shape, CASES[i].tensor.shape.map(String));
    const [field, values] = Object.entries(CASES[i].contents)[0];
    assert.equal(t.contents[field], values, CASES[i].name);
  });
  const response = asObject(ResponseType, encodeInferResponse({ modelName: 'm', modelVersion: '1', id: 'x', outputs: inputs, raw: true }));
  assert.is(response.rawOutputContents.length, CASES.length);
  assert.equal(new Float64Array(new Uint8Array(response.rawOutputContents[10]).buffer), CASES[10].tensor.data);
  // BYTES raw: 4-byte little-endian length, then the bytes.
  assert.equal(response.rawOutputContents[11], Buffer.from([6, 0, 0, 0, ...Buffer.from('héllo'), 0, 0, 0, 0]));
  assert.is(response.outputs[0].contents, undefined);
});

test('raw round trip through our own codec keeps every bit', () => {
  const inputs = [...CASES, { name: 'h', datatype: 'FP16', contents: {}, tensor: { dtype: 'FP16', shape: [2], data: Uint16Array.from([0x3c00, 0x7e00]) } as Tensor }]
    .map((c) => ({ name: c.name, tensor: c.tensor }));
  const req = decodeInferRequest(encodeInferRequest({ inputs, raw: true }));
  assert.is(req.raw, true);
  req.inputs.forEach((t, i) => assert.equal(plain(t.tensor), plain(inputs[i].tensor), inputs[i].name));
  // FP16 has no typed field: a response with an FP16 output goes raw even when typed was asked for.
  const res = decodeInferResponse(encodeInferResponse({ outputs: inputs.slice(-1), raw: false }));
  assert.is(res.raw, true);
  assert.equal(Array.from(res.outputs[0].tensor.data as Uint16Array), [0x3c00, 0x7e00]);
});

test('unpacked repeated scalars are accepted, as proto3 parsers must', () => {
  const w = protobuf.Writer.create();
  w.uint32((5 << 3) | 2).fork();
  w.uint32((1 << 3) | 2).string('x').uint32((2 << 3) | 2).string('INT32');
  w.uint32(3 << 3).int64(3); // shape, unpacked
  w.uint32((5 << 3) | 2).fork();
  w.uint32(2 << 3).int32(-7).uint32(2 << 3).int32(8); // int_contents, unpacked
  w.uint32((2 << 3) | 2).fork().int32(9).ldelim(); // and a packed run after them
  w.ldelim().ldelim();
  const req = decodeInferRequest(w.finish());
  assert.equal(plain(req.inputs[0].tensor), { dtype: 'INT32', shape: [3], data: [-7, 8, 9] });
});

test('malformed and inconsistent requests are InvalidInputError naming the tensor', () => {
  const bytes = encodeInferRequest({ inputs: [{ name: 'x', tensor: CASES[9].tensor }] });
  assert.throws(() => decodeInferRequest(bytes.subarray(0, bytes.length - 3)), (e: unknown) => e instanceof InvalidInputError && /malformed protobuf/.test((e as Error).message));
  const outOfRange = RequestType.encode(RequestType.fromObject({ inputs: [{ name: 'q', datatype: 'UINT8', shape: [1], contents: { uintContents: [256] } }] })).finish();
  assert.throws(() => decodeInferRequest(outOfRange), (e: unknown) => e instanceof InvalidInputError && e.tensor === 'q' && /256 is out of range for UINT8/.test(e.message));
  const rawCount = RequestType.encode(RequestType.fromObject({ inputs: [{ name: 'a', datatype: 'FP32', shape: [1] }, { name: 'b', datatype: 'FP32', shape: [1] }], rawInputContents: [Buffer.alloc(4)] })).finish();
  assert.throws(() => decodeInferRequest(rawCount), /raw contents hold 1 entries for 2 inputs/);
});

test('model metadata round trips through the reference decoder, -1 dims included', () => {
  const meta = { name: 'm', versions: ['1', '2'], platform: 'pyml-tensor', inputs: [{ name: 'x', dtype: 'FP32' as const, shape: [-1, 4] }], outputs: [{ name: 'y', dtype: 'INT64' as const, shape: [-1] }] };
  const bytes = encodeModelMetadata(meta);
  const ref = asObject(MetadataType, bytes);
  assert.equal(ref.inputs, [{ name: 'x', datatype: 'FP32', shape: ['-1', '4'] }]);
  assert.equal(decodeModelMetadata(bytes), meta);
});

test.run();
