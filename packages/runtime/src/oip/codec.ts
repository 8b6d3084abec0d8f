import type { Tensor, TensorSpec } from '@pyml/contract';
import { InvalidInputError } from '../errors.ts';
import { parseDataType, rawBytesOf, tensorFromContents, tensorFromRaw, writeContents } from './contents.ts';
import {
  Reader, Writer, WIRE_LEN, WIRE_VARINT, asBuffer, int64ToNumber, lengthDelimitedEnd, readInt64sInto, readString, readVarint64,
  varint, writePackedInt64s,
} from './wire.ts';

/**
 * Hand-written codec for the Open Inference Protocol messages (proto/grpc_predict_v2.proto, field numbers as
 * published by KServe). Inference messages decode straight into contract Tensors; both directions exist so the
 * same code serves the runtime (server side) and routers or tests (client side).
 */

export type InferParameterValue = boolean | number | bigint | string;
export type InferParameters = Record<string, InferParameterValue>;

/** A tensor with its wire name and optional per-tensor parameters, in message order. */
export interface NamedTensor {
  name: string;
  tensor: Tensor;
  parameters?: InferParameters;
}

export interface InferRequest {
  modelName: string;
  modelVersion: string;
  id: string;
  parameters: InferParameters;
  inputs: NamedTensor[];
  /** Requested outputs; empty means all. */
  outputs: { name: string; parameters?: InferParameters }[];
  /** Whether the inputs travelled (decode) / should travel (encode) as raw_input_contents. */
  raw: boolean;
}

export interface InferResponse {
  modelName: string;
  modelVersion: string;
  id: string;
  parameters: InferParameters;
  outputs: NamedTensor[];
  /** Whether the outputs travelled / should travel as raw_output_contents. */
  raw: boolean;
}

/** An input/output tensor message before its data is interpreted (the data may come later, in raw contents). */
interface TensorHeader {
  name: string;
  datatype: string;
  shape: number[];
  parameters: InferParameters;
  /** [start, end) of the InferTensorContents message, when present. */
  contents?: [number, number];
}

// ---------------------------------------------------------------------------------------------------------------
// ModelInferRequest / ModelInferResponse. The two messages share a layout: 1 model_name, 2 model_version, 3 id,
// 4 parameters, 5 tensors (InferInputTensor and InferOutputTensor are field-for-field the same), then
// request: 6 requested outputs, 7 raw contents; response: 6 raw contents.

/** Field 1 of a ModelInferRequest, read without decoding the rest (for routing by model name). */
export function readModelName(buf: Uint8Array): string {
  const r = Reader.create(buf);
  return wireErrors(() => {
    while (r.pos < r.len) {
      const tag = r.uint32();
      if (tag >>> 3 === 1 && (tag & 7) === WIRE_LEN) return readString(r);
      skipField(r, tag);
    }
    return '';
  });
}

export function decodeInferRequest(buf: Uint8Array): InferRequest {
  const r = Reader.create(buf);
  const req: InferRequest = { modelName: '', modelVersion: '', id: '', parameters: {}, inputs: [], outputs: [], raw: false };
  const headers: TensorHeader[] = [];
  const raw: Uint8Array[] = [];
  wireErrors(() => {
    while (r.pos < r.len) {
      const tag = r.uint32();
      switch (tag >>> 3) {
        case 1: req.modelName = readString(r); break;
        case 2: req.modelVersion = readString(r); break;
        case 3: req.id = readString(r); break;
        case 4: readParameterEntry(r, req.parameters); break;
        case 5: headers.push(readTensorHeader(r)); break;
        case 6: req.outputs.push(readRequestedOutput(r)); break;
        case 7: raw.push(r.bytes()); break;
        default: skipField(r, tag);
      }
    }
  });
  req.inputs = tensorsFrom(r, headers, raw, 'input');
  req.raw = raw.length > 0;
  return req;
}

export function encodeInferRequest(req: Partial<InferRequest> & { inputs: NamedTensor[] }): Buffer {
  const w = Writer.create();
  writeHead(w, req.modelName, req.modelVersion, req.id, req.parameters);
  for (const t of req.inputs) writeTensor(w, 5, t, !req.raw);
  for (const o of req.outputs ?? []) {
    w.uint32((6 << 3) | WIRE_LEN).fork();
    w.uint32((1 << 3) | WIRE_LEN).string(o.name);
    writeParameters(w, 2, o.parameters);
    w.ldelim();
  }
  if (req.raw) for (const t of req.inputs) w.uint32((7 << 3) | WIRE_LEN).bytes(rawBytesOf(t.tensor));
  return asBuffer(w.finish());
}

export function decodeInferResponse(buf: Uint8Array): InferResponse {
  const r = Reader.create(buf);
  const res: InferResponse = { modelName: '', modelVersion: '', id: '', parameters: {}, outputs: [], raw: false };
  const headers: TensorHeader[] = [];
  const raw: Uint8Array[] = [];
  wireErrors(() => {
    while (r.pos < r.len) {
      const tag = r.uint32();
      switch (tag >>> 3) {
        case 1: res.modelName = readString(r); break;
        case 2: res.modelVersion = readString(r); break;
        case 3: res.id = readString(r); break;
        case 4: readParameterEntry(r, res.parameters); break;
        case 5: headers.push(readTensorHeader(r)); break;
        case 6: raw.push(r.bytes()); break;
        default: r.skipType(tag & 7);
      }
    }
  });
  res.outputs = tensorsFrom(r, headers, raw, 'output');
  res.raw = raw.length > 0;
  return res;
}

/** Encodes a response. FP16 has no typed field, so any FP16 output turns the whole response raw. */
export function encodeInferResponse(res: Partial<InferResponse> & { outputs: NamedTensor[] }): Buffer {
  const raw = res.raw === true || res.outputs.some((o) => o.tensor.dtype === 'FP16');
  const w = Writer.create();
  writeHead(w, res.modelName, res.modelVersion, res.id, res.parameters);
  for (const t of res.outputs) writeTensor(w, 5, t, !raw);
  if (raw) for (const t of res.outputs) w.uint32((6 << 3) | WIRE_LEN).bytes(rawBytesOf(t.tensor));
  return asBuffer(w.finish());
}

function writeHead(w: Writer, modelName = '', modelVersion = '', id = '', parameters?: InferParameters): void {
  if (modelName) w.uint32((1 << 3) | WIRE_LEN).string(modelName);
  if (modelVersion) w.uint32((2 << 3) | WIRE_LEN).string(modelVersion);
  if (id) w.uint32((3 << 3) | WIRE_LEN).string(id);
  writeParameters(w, 4, parameters);
}

function writeTensor(w: Writer, field: number, t: NamedTensor, typed: boolean): void {
  w.uint32((field << 3) | WIRE_LEN).fork();
  w.uint32((1 << 3) | WIRE_LEN).string(t.name);
  w.uint32((2 << 3) | WIRE_LEN).string(t.tensor.dtype);
  writePackedInt64s(w, 3, t.tensor.shape);
  writeParameters(w, 4, t.parameters);
  if (typed) {
    w.uint32((5 << 3) | WIRE_LEN).fork();
    writeContents(w, t.tensor);
    w.ldelim();
  }
  w.ldelim();
}

function readTensorHeader(r: Reader): TensorHeader {
  const end = lengthDelimitedEnd(r);
  const h: TensorHeader = { name: '', datatype: '', shape: [], parameters: {} };
  while (r.pos < end) {
    const tag = r.uint32();
    switch (tag >>> 3) {
      case 1: h.name = readString(r); break;
      case 2: h.datatype = readString(r); break;
      case 3: readInt64sInto(r, tag & 7, h.shape); break;
      case 4: readParameterEntry(r, h.parameters); break;
      case 5: {
        const e = lengthDelimitedEnd(r);
        h.contents = [r.pos, e];
        r.pos = e;
        break;
      }
      default: r.skipType(tag & 7);
    }
  }
  r.pos = end;
  return h;
}

function readRequestedOutput(r: Reader): { name: string; parameters?: InferParameters } {
  const end = lengthDelimitedEnd(r);
  const o: { name: string; parameters: InferParameters } = { name: '', parameters: {} };
  while (r.pos < end) {
    const tag = r.uint32();
    if (tag >>> 3 === 1) o.name = readString(r);
    else if (tag >>> 3 === 2) readParameterEntry(r, o.parameters);
    else r.skipType(tag & 7);
  }
  r.pos = end;
  return o;
}

/** Turns tensor headers plus (optional) raw contents into named tensors, naming the tensor in every error. */
function tensorsFrom(r: Reader, headers: TensorHeader[], raw: Uint8Array[], role: 'input' | 'output'): NamedTensor[] {
  if (raw.length > 0 && raw.length !== headers.length) {
    throw new InvalidInputError(`raw contents hold ${raw.length} entries for ${headers.length} ${role}s; send one per ${role}, in order`);
  }
  return headers.map((h, i) => {
    const label = h.name || `#${i}`;
    if (!h.name) throw new InvalidInputError(`${role} ${label} has no name`);
    const dtype = parseDataType(label, h.datatype);
    for (const d of h.shape) {
      if (!Number.isSafeInteger(d) || d < 0) throw new InvalidInputError(`${role} '${label}': shape [${h.shape.join(', ')}] has a negative or huge dimension`, label);
    }
    // Every element takes at least a byte of the message, so a shape declaring more elements than the message has
    // bytes cannot be right: refused before any buffer is made for it.
    const elements = h.shape.reduce((n, d) => n * d, 1);
    if (elements > r.len) {
      throw new InvalidInputError(`${role} '${label}': shape [${h.shape.join(', ')}] declares ${elements} elements, more than a message of ${r.len} bytes can hold`, label);
    }
    let tensor: Tensor;
    if (raw.length > 0) {
      if (h.contents && h.contents[1] > h.contents[0]) {
        throw new InvalidInputError(`${role} '${label}': has both typed contents and raw contents; use one`, label);
      }
      tensor = tensorFromRaw(label, dtype, h.shape, raw[i]);
    } else {
      const [start, end] = h.contents ?? [0, 0];
      tensor = wireErrors(() => tensorFromContents(label, dtype, h.shape, r, start, end));
    }
    return { name: h.name, tensor, ...(Object.keys(h.parameters).length ? { parameters: h.parameters } : {}) };
  });
}

// ---------------------------------------------------------------------------------------------------------------
// InferParameter map entries: { 1 key, 2 value: oneof { 1 bool, 2 int64, 3 string, 4 double, 5 uint64 } }.

function readParameterEntry(r: Reader, into: InferParameters): void {
  const end = lengthDelimitedEnd(r);
  let key = '';
  let value: InferParameterValue = false;
  while (r.pos < end) {
    const tag = r.uint32();
    if (tag >>> 3 === 1) key = readString(r);
    else if (tag >>> 3 === 2) value = readParameterValue(r);
    else r.skipType(tag & 7);
  }
  r.pos = end;
  into[key] = value;
}

function readParameterValue(r: Reader): InferParameterValue {
  const end = lengthDelimitedEnd(r);
  let value: InferParameterValue = false;
  while (r.pos < end) {
    const tag = r.uint32();
    const f = tag >>> 3;
    if (f === 1) value = r.bool();
    else if ((f === 2 || f === 5) && (tag & 7) === WIRE_VARINT) {
      r.pos = readVarint64(r.buf, r.pos, end);
      const n = f === 2 ? int64ToNumber(varint.lo, varint.hi) : varint.hi * 0x1_0000_0000 + varint.lo;
      value = Number.isSafeInteger(n) ? n : f === 2
        ? BigInt.asIntN(64, (BigInt(varint.hi) << 32n) | BigInt(varint.lo))
        : (BigInt(varint.hi) << 32n) | BigInt(varint.lo);
    } else if (f === 3) value = readString(r);
    else if (f === 4) value = r.double();
    else r.skipType(tag & 7);
  }
  r.pos = end;
  return value;
}

function writeParameters(w: Writer, field: number, parameters?: InferParameters): void {
  if (!parameters) return;
  for (const [key, value] of Object.entries(parameters)) {
    w.uint32((field << 3) | WIRE_LEN).fork();
    w.uint32((1 << 3) | WIRE_LEN).string(key);
    w.uint32((2 << 3) | WIRE_LEN).fork();
    if (typeof value === 'boolean') w.uint32(1 << 3).bool(value);
    else if (typeof value === 'string') w.uint32((3 << 3) | WIRE_LEN).string(value);
    else if (typeof value === 'number' && !Number.isInteger(value)) w.uint32((4 << 3) | 1).double(value);
    else {
      const v = BigInt.asUintN(64, BigInt(value));
      w.uint32(2 << 3).uint64({ low: Number(v & 0xffff_ffffn) | 0, high: Number(v >> 32n) | 0, unsigned: true } as never);
    }
    w.ldelim();
    w.ldelim();
  }
}

// ---------------------------------------------------------------------------------------------------------------
// Health, readiness and metadata messages.

/** `{ name = 1; version = 2 }`: ModelReadyRequest and ModelMetadataRequest. */
export function decodeModelRef(buf: Uint8Array): { name: string; version: string } {
  const r = Reader.create(buf);
  const ref = { name: '', version: '' };
  wireErrors(() => {
    while (r.pos < r.len) {
      const tag = r.uint32();
      if (tag >>> 3 === 1) ref.name = readString(r);
      else if (tag >>> 3 === 2) ref.version = readString(r);
      else r.skipType(tag & 7);
    }
  });
  return ref;
}

export function encodeModelRef(ref: { name?: string; version?: string }): Buffer {
  const w = Writer.create();
  if (ref.name) w.uint32((1 << 3) | WIRE_LEN).string(ref.name);
  if (ref.version) w.uint32((2 << 3) | WIRE_LEN).string(ref.version);
  return asBuffer(w.finish());
}

/** Requests with no fields (ServerLive, ServerReady, ServerMetadata): unknown fields are ignored, as proto3 does. */
export function decodeEmpty(_buf: Uint8Array): Record<string, never> {
  return {};
}

export function encodeEmpty(_value?: unknown): Buffer {
  return Buffer.alloc(0);
}

/** `{ bool = 1 }`: ServerLiveResponse.live, ServerReadyResponse.ready, ModelReadyResponse.ready. */
export function encodeFlag(value: boolean): Buffer {
  return value ? Buffer.from([0x08, 0x01]) : Buffer.alloc(0);
}

export function decodeFlag(buf: Uint8Array): boolean {
  const r = Reader.create(buf);
  let value = false;
  while (r.pos < r.len) {
    const tag = r.uint32();
    if (tag >>> 3 === 1) value = r.bool();
    else r.skipType(tag & 7);
  }
  return value;
}

export interface ServerMetadata {
  name: string;
  version: string;
  extensions: string[];
}

export function encodeServerMetadata(m: ServerMetadata): Buffer {
  const w = Writer.create();
  if (m.name) w.uint32((1 << 3) | WIRE_LEN).string(m.name);
  if (m.version) w.uint32((2 << 3) | WIRE_LEN).string(m.version);
  for (const e of m.extensions) w.uint32((3 << 3) | WIRE_LEN).string(e);
  return asBuffer(w.finish());
}

export function decodeServerMetadata(buf: Uint8Array): ServerMetadata {
  const r = Reader.create(buf);
  const m: ServerMetadata = { name: '', version: '', extensions: [] };
  while (r.pos < r.len) {
    const tag = r.uint32();
    switch (tag >>> 3) {
      case 1: m.name = readString(r); break;
      case 2: m.version = readString(r); break;
      case 3: m.extensions.push(readString(r)); break;
      default: r.skipType(tag & 7);
    }
  }
  return m;
}

export interface ModelMetadata {
  name: string;
  versions: string[];
  platform: string;
  inputs: TensorSpec[];
  outputs: TensorSpec[];
}

export function encodeModelMetadata(m: ModelMetadata): Buffer {
  const w = Writer.create();
  if (m.name) w.uint32((1 << 3) | WIRE_LEN).string(m.name);
  for (const v of m.versions) w.uint32((2 << 3) | WIRE_LEN).string(v);
  if (m.platform) w.uint32((3 << 3) | WIRE_LEN).string(m.platform);
  for (const [field, specs] of [[4, m.inputs], [5, m.outputs]] as const) {
    for (const s of specs) {
      w.uint32((field << 3) | WIRE_LEN).fork();
      w.uint32((1 << 3) | WIRE_LEN).string(s.name);
      w.uint32((2 << 3) | WIRE_LEN).string(s.dtype);
      writePackedInt64s(w, 3, s.shape);
      w.ldelim();
    }
  }
  return asBuffer(w.finish());
}

export function decodeModelMetadata(buf: Uint8Array): ModelMetadata {
  const r = Reader.create(buf);
  const m: ModelMetadata = { name: '', versions: [], platform: '', inputs: [], outputs: [] };
  while (r.pos < r.len) {
    const tag = r.uint32();
    switch (tag >>> 3) {
      case 1: m.name = readString(r); break;
      case 2: m.versions.push(readString(r)); break;
      case 3: m.platform = readString(r); break;
      case 4: case 5: {
        const h = readTensorHeader(r);
        (tag >>> 3 === 4 ? m.inputs : m.outputs).push({ name: h.name, dtype: h.datatype as TensorSpec['dtype'], shape: h.shape });
        break;
      }
      default: r.skipType(tag & 7);
    }
  }
  return m;
}

/** grpc.health.v1: HealthCheckRequest { service = 1 }, HealthCheckResponse { status = 1 }. */
export const HealthStatus = { UNKNOWN: 0, SERVING: 1, NOT_SERVING: 2, SERVICE_UNKNOWN: 3 } as const;

export function decodeHealthCheckRequest(buf: Uint8Array): { service: string } {
  const r = Reader.create(buf);
  let service = '';
  wireErrors(() => {
    while (r.pos < r.len) {
      const tag = r.uint32();
      if (tag >>> 3 === 1) service = readString(r);
      else r.skipType(tag & 7);
    }
  });
  return { service };
}

export function encodeHealthCheckRequest(req: { service?: string }): Buffer {
  const w = Writer.create();
  if (req.service) w.uint32((1 << 3) | WIRE_LEN).string(req.service);
  return asBuffer(w.finish());
}

export function encodeHealthCheckResponse(status: number): Buffer {
  const w = Writer.create();
  if (status) w.uint32(1 << 3).int32(status);
  return asBuffer(w.finish());
}

export function decodeHealthCheckResponse(buf: Uint8Array): number {
  const r = Reader.create(buf);
  let status = 0;
  while (r.pos < r.len) {
    const tag = r.uint32();
    if (tag >>> 3 === 1) status = r.int32();
    else r.skipType(tag & 7);
  }
  return status;
}

/**
 * Skips an unknown field. Field number 0 does not exist in protobuf; refusing it ends garbage early (60 MB of
 * zeros read as 30M empty fields 0 kept the service's event loop busy for a second).
 */
function skipField(r: Reader, tag: number): void {
  if (tag >>> 3 === 0) throw new RangeError(`field number 0 at byte ${r.pos}`);
  r.skipType(tag & 7);
}

/** Malformed protobuf (truncated, bad lengths) is the caller's fault: report it as InvalidInputError. */
function wireErrors<T>(fn: () => T): T {
  try {
    return fn();
  } catch (error) {
    if (error instanceof InvalidInputError) throw error;
    throw new InvalidInputError(`malformed protobuf message: ${error instanceof Error ? error.message : String(error)}`);
  }
}
