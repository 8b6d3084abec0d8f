import { deflateSync, gzipSync } from 'node:zlib';
import { type TensorSpec, fp32, inferRequest, message } from './fuzz-protobuf.ts';
import type { Random } from './fuzz-random.ts';

/**
 * Mutated iris requests for the fuzz suite: each case starts from a valid request (one flower, FP32 [1, 4]) and
 * breaks one thing, structurally (wrong types, dtypes, shapes, names, nesting) or as bytes (bit flips, truncation,
 * garbage). Every case is labelled with what was done, so a failure names its input.
 */

export const FLOWER = [5.1, 3.5, 1.4, 0.2];
export const VALID_REST = { inputs: [{ name: 'input', datatype: 'FP32', shape: [1, 4], data: FLOWER }] };

/** Names a caller may send: non-ASCII, control characters, lone surrogates, header-breaking text, very long. */
const ODD_NAMES: unknown[] = [
  'é', 'entrée', '名前', '😀', '\u0000', '\n', 'a\r\nb: c', '\ud800', '\udfff', 'in put', '%', '%E9', '%%', '"', '\\',
  'x'.repeat(5000), '', ' ', 123, null, ['input'], { name: 'input' }, true,
];
const ODD_DATATYPES: unknown[] = [['FP32'], 'fp32', 'FP33', '', 42, null, {}, 'BYTES', 'INT64', 'BOOL', 'FP16', 'UINT8', 'FP64', 'é', ['FP32', 'FP32'], 'FP32\u0000'];
const ODD_SHAPES: unknown[] = [
  [-1, 4], [1e9, 1e9], [2 ** 53, 4], [2 ** 31, 2 ** 31], [1.5, 4], ['1', 4], [], [4], [1, 4, 1], null, 'x', [[1], [4]],
  [0, 4], [1e6, 4], [1, -4], [Infinity, 4], [1, 4e15], new Array(1000).fill(1),
];
const ODD_DATA: unknown[] = [
  ['a', 'b', 'c', 'd'], [null, null, null, null], [{}, {}, {}, {}], [1, 2, 3], [1, 2, 3, 4, 5], [], 'data', null, {},
  [[5.1, 3.5], [1.4, 0.2]], [true, false, true, false], ['NaN', 'Infinity', '-Infinity', 'NaN'], [1e308, -1e308, 5e-324, 0],
  [[[[[[[[5.1]]]]]]], 3.5, 1.4, 0.2], [9007199254740993, 1, 2, 3], [[], [], [], []], [5.1, 3.5, 1.4, [0.2, [0.3]]],
];
const ODD_IDS: unknown[] = [{}, [], 1, null, true, 'é', '\ud800', 'x'.repeat(10_000), { toString: 'x' }];
const ODD_OUTPUTS: unknown[] = [[{}], [{ name: 'nope' }], 'x', [1], [{ name: 'é' }], [null], {}, [{ name: 5 }], [{ name: '\u0000' }]];
const ODD_TOPS: unknown[] = [[], null, 1, 'x', true, { inputs: {} }, { inputs: null }, { inputs: [null] }, { inputs: [1] }, { inputs: [[]] }, { inputs: 'x' }];
const BAD_PATHS = [
  '/v2/models/%E0%A4%A/infer', '/v2/models/%/infer', '/v2/models/%zz/infer', '/v2/models/iris/versions/%ff/infer',
  '/v2/models/%C3%A9/infer', '/v2/models/%ED%A0%80/infer', '/v2/models/iris%00/infer', '/v2/models/%E0%A4%A/ready',
  '/v2/models/%E0%A4%A', '/v2/models/iris/versions/%/ready', '/v2/%', '/%', '/v2/models/' + 'a'.repeat(4000) + '/infer',
];

export interface RestCase {
  label: string;
  method: string;
  path: string;
  body?: Buffer;
  headers?: Record<string, string>;
}

function clone(): { inputs: Record<string, unknown>[]; [k: string]: unknown } {
  return JSON.parse(JSON.stringify(VALID_REST));
}

function json(value: unknown): Buffer {
  return Buffer.from(JSON.stringify(value), 'utf8');
}

function flipBits(rnd: Random, bytes: Buffer, flips: number): Buffer {
  const out = Buffer.from(bytes);
  for (let i = 0; i < flips; i++) {
    const at = rnd.int(out.length);
    out[at] ^= 1 << rnd.int(8);
  }
  return out;
}

function insertBytes(rnd: Random, bytes: Buffer): Buffer {
  const at = rnd.int(bytes.length + 1);
  return Buffer.concat([bytes.subarray(0, at), rnd.bytes(1 + rnd.int(16)), bytes.subarray(at)]);
}

/** `[[[ ... 1 ... ]]]`, `depth` levels. */
function nested(depth: number): string {
  return '['.repeat(depth) + '1' + ']'.repeat(depth);
}

const REST_MUTATIONS: ((rnd: Random) => RestCase)[] = [
  (rnd) => { const b = clone(); const v = rnd.pick(ODD_NAMES); b.inputs[0].name = v; return { label: `name ${JSON.stringify(v)?.slice(0, 40)}`, method: 'POST', path: '/v2/models/iris/infer', body: json(b) }; },
  (rnd) => { const b = clone(); const v = rnd.pick(ODD_DATATYPES); b.inputs[0].datatype = v; return { label: `datatype ${JSON.stringify(v)}`, method: 'POST', path: '/v2/models/iris/infer', body: json(b) }; },
  (rnd) => { const b = clone(); const v = rnd.pick(ODD_SHAPES); b.inputs[0].shape = v; return { label: `shape ${JSON.stringify(v)?.slice(0, 40)}`, method: 'POST', path: '/v2/models/iris/infer', body: json(b) }; },
  (rnd) => { const b = clone(); const v = rnd.pick(ODD_DATA); b.inputs[0].data = v; return { label: `data ${JSON.stringify(v)?.slice(0, 40)}`, method: 'POST', path: '/v2/models/iris/infer', body: json(b) }; },
  (rnd) => { const b = clone(); const v = rnd.pick(ODD_IDS); b.id = v; return { label: `id ${String(JSON.stringify(v)).slice(0, 40)}`, method: 'POST', path: '/v2/models/iris/infer', body: json(b) }; },
  (rnd) => { const b = clone(); const v = rnd.pick(ODD_OUTPUTS); b.outputs = v; return { label: `outputs ${JSON.stringify(v)}`, method: 'POST', path: '/v2/models/iris/infer', body: json(b) }; },
  (rnd) => { const v = rnd.pick(ODD_TOPS); return { label: `body ${JSON.stringify(v)}`, method: 'POST', path: '/v2/models/iris/infer', body: json(v) }; },
  () => { const b = clone(); b.inputs.push(b.inputs[0]); return { label: 'input twice', method: 'POST', path: '/v2/models/iris/infer', body: json(b) }; },
  (rnd) => { const flips = 1 + rnd.int(8); return { label: `${flips} bit flips`, method: 'POST', path: '/v2/models/iris/infer', body: flipBits(rnd, json(VALID_REST), flips) }; },
  (rnd) => { const body = json(VALID_REST); const at = rnd.int(body.length); return { label: `truncated at ${at}`, method: 'POST', path: '/v2/models/iris/infer', body: body.subarray(0, at) }; },
  (rnd) => ({ label: 'random bytes inserted', method: 'POST', path: '/v2/models/iris/infer', body: insertBytes(rnd, json(VALID_REST)) }),
  (rnd) => ({ label: 'garbage body', method: 'POST', path: '/v2/models/iris/infer', body: rnd.bytes(rnd.int(2048)) }),
  (rnd) => {
    const depth = rnd.pick([65, 100, 1000, 100_000]);
    const body = json(VALID_REST).toString().replace(JSON.stringify(FLOWER), nested(depth));
    return { label: `data nested ${depth} deep`, method: 'POST', path: '/v2/models/iris/infer', body: Buffer.from(body) };
  },
  (rnd) => { const depth = rnd.pick([1000, 100_000]); return { label: `body nested ${depth} deep`, method: 'POST', path: '/v2/models/iris/infer', body: Buffer.from(`{"inputs":${'['.repeat(depth)}`) }; },
  (rnd) => { const path = rnd.pick(BAD_PATHS); return { label: `path ${path.slice(0, 60)}`, method: rnd.pick(['POST', 'GET']), path, body: json(VALID_REST) }; },
  (rnd) => ({ label: 'GET infer', method: rnd.pick(['GET', 'PUT', 'DELETE']), path: '/v2/models/iris/infer' }),
  (rnd) => { const n = rnd.pick([1e6, 2 ** 40, 4e9]); const b = clone(); b.inputs[0].shape = [n, 4]; return { label: `declared shape [${n}, 4], 4 values`, method: 'POST', path: '/v2/models/iris/infer', body: json(b) }; },
  (rnd) => ({ label: 'gzip-encoded JSON', method: 'POST', path: '/v2/models/iris/infer', body: gzipSync(json(VALID_REST)), headers: { 'content-encoding': rnd.pick(['gzip', 'br']) } }),
];

export function restCase(rnd: Random): RestCase {
  return rnd.pick(REST_MUTATIONS)(rnd);
}

export interface GrpcCase {
  label: string;
  method: 'ModelInfer' | 'ModelReady' | 'ModelMetadata' | 'Check';
  bytes: Buffer;
}

const ODD_WIRE_NAMES: (string | Uint8Array)[] = [
  'é', '名前', '😀', '\u0000', '\n', 'a\r\nb: c', '%', '%E9', 'x'.repeat(4000), '',
  Uint8Array.from([0xed, 0xa0, 0x80]), Uint8Array.from([0xff, 0xfe]), Uint8Array.from([0xc3]),
];
const ODD_WIRE_DTYPES: (string | Uint8Array)[] = ['fp32', 'FP33', '', 'BYTES', 'INT64', 'FP16', 'BOOL', 'é', Uint8Array.from([0xff])];
const ODD_WIRE_SHAPES: (number | bigint)[][] = [[-1, 4], [2n ** 62n, 4], [2 ** 31, 2 ** 31], [], [4], [1, 4, 1], [0, 4], [1e6, 4], [1, -4], [-(2n ** 63n)], new Array(500).fill(1)];

export function validInfer(model: string | Uint8Array = 'iris'): TensorSpec[] {
  return [{ name: 'input', datatype: 'FP32', shape: [1, 4], contents: { field: 6, bytes: fp32(FLOWER) } }];
}

const GRPC_MUTATIONS: ((rnd: Random, model: string) => GrpcCase)[] = [
  (rnd, model) => { const t = validInfer(); const v = rnd.pick(ODD_WIRE_NAMES); t[0].name = v; return { label: `name ${JSON.stringify(Buffer.from(v).toString('hex').slice(0, 40))}`, method: 'ModelInfer', bytes: inferRequest({ model, inputs: t }) }; },
  (rnd, model) => { const t = validInfer(); const v = rnd.pick(ODD_WIRE_NAMES); t[0].name = v; return { label: `name ${Buffer.from(v).toString('hex').slice(0, 40)}, raw`, method: 'ModelInfer', bytes: inferRequest({ model, inputs: [{ ...t[0], contents: undefined }], raw: [fp32(FLOWER)] }) }; },
  (rnd, model) => { const t = validInfer(); const v = rnd.pick(ODD_WIRE_DTYPES); t[0].datatype = v; return { label: `datatype ${Buffer.from(v).toString('hex')}`, method: 'ModelInfer', bytes: inferRequest({ model, inputs: t }) }; },
  (rnd, model) => { const t = validInfer(); const v = rnd.pick(ODD_WIRE_SHAPES); t[0].shape = v; return { label: `shape ${v.slice(0, 4).join(',')}`, method: 'ModelInfer', bytes: inferRequest({ model, inputs: t }) }; },
  (rnd, model) => { const v = rnd.pick(ODD_WIRE_SHAPES); return { label: `raw, shape ${v.slice(0, 4).join(',')}`, method: 'ModelInfer', bytes: inferRequest({ model, inputs: [{ name: 'input', datatype: 'FP32', shape: v }], raw: [fp32(FLOWER)] }) }; },
  (rnd, model) => { const n = rnd.int(40); return { label: `raw contents of ${n} bytes`, method: 'ModelInfer', bytes: inferRequest({ model, inputs: [{ name: 'input', datatype: 'FP32', shape: [1, 4] }], raw: [rnd.bytes(n)] }) }; },
  (rnd, model) => ({ label: 'typed and raw contents', method: 'ModelInfer', bytes: inferRequest({ model, inputs: validInfer(), raw: [fp32(FLOWER)] }) }),
  (rnd, model) => { const field = 1 + rnd.int(8); return { label: `contents in field ${field}`, method: 'ModelInfer', bytes: inferRequest({ model, inputs: [{ ...validInfer()[0], contents: { field, bytes: rnd.bytes(16) } }] }) }; },
  (rnd, model) => { const v = rnd.pick(ODD_WIRE_NAMES); return { label: `id ${Buffer.from(v).toString('hex').slice(0, 40)}`, method: 'ModelInfer', bytes: inferRequest({ model, id: v, inputs: validInfer() }) }; },
  (rnd, model) => { const v = rnd.pick(ODD_WIRE_NAMES); return { label: `requested output ${Buffer.from(v).toString('hex').slice(0, 40)}`, method: 'ModelInfer', bytes: inferRequest({ model, inputs: validInfer(), outputs: [v] }) }; },
  (rnd) => { const v = rnd.pick(ODD_WIRE_NAMES); return { label: `model name ${Buffer.from(v).toString('hex').slice(0, 40)}`, method: 'ModelInfer', bytes: inferRequest({ model: v, inputs: validInfer() }) }; },
  (rnd, model) => { const flips = 1 + rnd.int(8); return { label: `${flips} bit flips`, method: 'ModelInfer', bytes: flipBits(rnd, inferRequest({ model, inputs: validInfer() }), flips) }; },
  (rnd, model) => { const b = inferRequest({ model, inputs: validInfer() }); const at = rnd.int(b.length); return { label: `truncated at ${at}`, method: 'ModelInfer', bytes: b.subarray(0, at) }; },
  (rnd, model) => ({ label: 'random bytes inserted', method: 'ModelInfer', bytes: insertBytes(rnd, inferRequest({ model, inputs: validInfer() })) }),
  (rnd) => ({ label: 'protobuf garbage', method: rnd.pick(['ModelInfer', 'ModelReady', 'ModelMetadata', 'Check'] as const), bytes: rnd.bytes(rnd.int(512)) }),
  (rnd, model) => ({ label: 'ModelReady with odd fields', method: rnd.pick(['ModelReady', 'ModelMetadata'] as const), bytes: flipBits(rnd, message([[1, 'bytes', model], [2, 'bytes', rnd.pick(ODD_WIRE_NAMES)]]), rnd.int(3)) }),
  (rnd) => ({ label: 'health check of an odd service', method: 'Check', bytes: message([[1, 'bytes', rnd.pick(ODD_WIRE_NAMES)]]) }),
  (rnd, model) => ({ label: 'length field past the end', method: 'ModelInfer', bytes: Buffer.concat([message([[1, 'bytes', model]]), Buffer.from([0x2a, 0xff, 0xff, 0xff, 0xff, 0x0f])]) }),
];

export function grpcCase(rnd: Random, model: string): GrpcCase {
  return rnd.pick(GRPC_MUTATIONS)(rnd, model);
}

/** A gRPC call as HTTP/2 frames, for what grpc-js will not send: compression flags, encodings, torn framing. */
export interface FrameCase {
  label: string;
  headers: Record<string, string>;
  data: Buffer;
}

function prefixed(message: Buffer, flag: number, length = message.length): Buffer {
  const prefix = Buffer.alloc(5);
  prefix[0] = flag;
  prefix.writeUInt32BE(length >>> 0, 1);
  return Buffer.concat([prefix, message]);
}

const FRAME_MUTATIONS: ((rnd: Random, request: Buffer) => FrameCase)[] = [
  (rnd, request) => { const flips = 1 + rnd.int(6); return { label: `gzip of a request with ${flips} bit flips`, headers: { 'grpc-encoding': 'gzip' }, data: prefixed(gzipSync(flipBits(rnd, request, flips)), 1) }; },
  (rnd, request) => { const gz = gzipSync(request); const at = rnd.int(gz.length); return { label: `gzip truncated at ${at}`, headers: { 'grpc-encoding': 'gzip' }, data: prefixed(gz.subarray(0, at), 1) }; },
  (rnd, request) => ({ label: 'gzip with bit flips', headers: { 'grpc-encoding': 'gzip' }, data: prefixed(flipBits(rnd, gzipSync(request), 1 + rnd.int(4)), 1) }),
  (rnd) => ({ label: 'compressed garbage', headers: { 'grpc-encoding': rnd.pick(['gzip', 'deflate']) }, data: prefixed(rnd.bytes(rnd.int(300)), 1) }),
  (rnd) => ({ label: 'gzip of protobuf garbage', headers: { 'grpc-encoding': 'gzip' }, data: prefixed(gzipSync(rnd.bytes(rnd.int(300))), 1) }),
  (rnd, request) => ({ label: 'deflate of a request', headers: { 'grpc-encoding': 'deflate' }, data: prefixed(deflateSync(request), 1) }),
  (rnd, request) => ({ label: 'compressed flag, unknown encoding', headers: { 'grpc-encoding': rnd.pick(['snappy', 'br', '']) }, data: prefixed(gzipSync(request), 1) }),
  (rnd, request) => ({ label: 'compressed flag, no grpc-encoding', headers: {}, data: prefixed(gzipSync(request), 1) }),
  (rnd, request) => ({ label: `flag byte ${rnd.int(256)}`, headers: { 'grpc-encoding': 'gzip' }, data: prefixed(request, 2 + rnd.int(254)) }),
  (rnd, request) => { const length = request.length + 1 + rnd.int(100); return { label: `prefix says ${length} bytes, ${request.length} sent`, headers: {}, data: prefixed(request, 0, length) }; },
  (rnd, request) => { const length = rnd.int(request.length); return { label: `prefix says ${length} bytes, ${request.length} sent`, headers: {}, data: prefixed(request, 0, length) }; },
  (rnd, request) => ({ label: 'two messages in a unary call', headers: {}, data: Buffer.concat([prefixed(request, 0), prefixed(request, 0)]) }),
  (rnd) => ({ label: `${rnd.int(5)} bytes of DATA`, headers: {}, data: rnd.bytes(rnd.int(5)) }),
  // Malformed timeouts are ignored (the service's own deadline applies); a tiny valid one would rightly expire.
  (rnd, request) => ({ label: 'malformed grpc-timeout', headers: { 'grpc-timeout': rnd.pick(['', 'x', '999999999S', '-1m', '1.5S', 'S']) }, data: prefixed(request, 0) }),
];

export function frameCase(rnd: Random, request: Buffer): FrameCase {
  return rnd.pick(FRAME_MUTATIONS)(rnd, request);
}
