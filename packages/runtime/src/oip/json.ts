import { type DataType, type Tensor, elementCount, typedArrayFor } from '@pyml/contract';
import { InvalidInputError } from '../errors.ts';
import { formatShape } from '../validate.ts';
import { parseDataType } from './contents.ts';
import { NumberRun, parseJsonBytes } from './json-parse.ts';
import type { NamedTensor } from './codec.ts';

/**
 * The Open Inference Protocol's JSON form (the REST body), used by `entrypoint predict`:
 * `{"inputs":[{"name","datatype","shape","data"}]}` in, `{"model_name","model_version","outputs":[...]}` out.
 * 64-bit integers are written as exact JSON numbers; non-finite floats as the strings "NaN", "Infinity", "-Infinity".
 */

export interface JsonInferRequest {
  id?: string;
  inputs: NamedTensor[];
  /** Requested output names; empty means all. */
  outputs: string[];
}

/** What a request may cost before any tensor buffer is made. */
export interface JsonLimits {
  /** Largest tensor data, in bytes (a dtype's width times the declared shape's element count), summed over inputs. */
  maxBytes?: number;
}

/**
 * A V2 JSON request from its body's bytes, parsed by json-parse.ts (bounded nesting, 8 bytes per number of a long
 * array, no string copy of the body) and checked as parseJsonRequest does.
 */
export function parseJsonBody(body: Uint8Array, limits: JsonLimits = {}): JsonInferRequest {
  return parseJsonRequest(parseJsonBytes(body), limits);
}

export function parseJsonRequest(body: unknown, limits: JsonLimits = {}): JsonInferRequest {
  if (!body || typeof body !== 'object' || !Array.isArray((body as { inputs?: unknown }).inputs)) {
    throw new InvalidInputError('request must be a JSON object with an "inputs" array');
  }
  const b = body as { id?: unknown; inputs: unknown[]; outputs?: unknown };
  // The V2 protocol's id is a string: anything else is refused rather than turned into "[object Object]".
  if (b.id !== undefined && typeof b.id !== 'string') throw new InvalidInputError(`"id" must be a string, got ${jsonType(b.id)}`);
  let budget = limits.maxBytes ?? Infinity;
  const inputs = b.inputs.map((raw, i): NamedTensor => {
    const t = raw as { name?: unknown; datatype?: unknown; shape?: unknown; data?: unknown };
    if (!t || typeof t !== 'object' || typeof t.name !== 'string' || !t.name) throw new InvalidInputError(`inputs[${i}] has no "name"`);
    const name = t.name;
    if (typeof t.datatype !== 'string') throw new InvalidInputError(`input '${name}': "datatype" must be a string, got ${jsonType(t.datatype)}`, name);
    const dtype = parseDataType(name, t.datatype);
    if (!Array.isArray(t.shape) || t.shape.some((d) => !Number.isSafeInteger(d) || (d as number) < 0)) {
      throw new InvalidInputError(`input '${name}': "shape" must be a list of non-negative integers`, name);
    }
    const shape = t.shape as number[];
    if (!Array.isArray(t.data) && !(t.data instanceof NumberRun)) throw new InvalidInputError(`input '${name}': "data" must be an array`, name);
    const n = elementCount(shape);
    // The declared size is checked before anything is made for it; BYTES count at least their 4-byte length prefix.
    const bytes = n * (typedArrayFor(dtype)?.BYTES_PER_ELEMENT ?? 4);
    if (bytes > budget) {
      throw new InvalidInputError(`input '${name}': shape ${formatShape(shape)} of ${dtype} is ${bytes} bytes, over the limit of ${limits.maxBytes} bytes for a request`, name);
    }
    budget -= bytes;
    const count = leafCount(t.data);
    if (count !== n) throw new InvalidInputError(`input '${name}': shape ${formatShape(shape)} needs ${n} elements, "data" has ${count}`, name);
    return { name, tensor: { dtype, shape, data: convert(name, dtype, t.data, n) } as Tensor };
  });
  const outputs = b.outputs === undefined ? [] : requestedOutputs(b.outputs);
  return { ...(b.id !== undefined ? { id: b.id } : {}), inputs, outputs };
}

/** `outputs`: `[{"name": ...}]` as V2 says, or plain names. */
function requestedOutputs(outputs: unknown): string[] {
  if (!Array.isArray(outputs)) throw new InvalidInputError(`"outputs" must be an array, got ${jsonType(outputs)}`);
  return outputs.map((o, i) => {
    const name = typeof o === 'string' ? o : (o as { name?: unknown } | null)?.name;
    if (typeof name !== 'string' || !name) throw new InvalidInputError(`outputs[${i}] must be an object with a "name" string`);
    return name;
  });
}

function jsonType(v: unknown): string {
  return v === null ? 'null' : Array.isArray(v) ? 'an array' : typeof v;
}

/** Nested data: plain arrays, or (from parseJsonBody) runs of numbers. */
type JsonData = unknown[] | NumberRun;

/** Leaves of a (nested) data array, counted without copying it; nesting is bounded by the parser. */
function leafCount(data: JsonData): number {
  if (data instanceof NumberRun) return data.length;
  let n = 0;
  for (const v of data) n += Array.isArray(v) || v instanceof NumberRun ? leafCount(v) : 1;
  return n;
}

/** Visits the leaves of a (nested) data array in order, without flattening it into a copy. */
function eachLeaf(data: JsonData, visit: (v: unknown) => void): void {
  if (data instanceof NumberRun) return data.forEach(visit);
  for (const v of data) {
    if (Array.isArray(v) || v instanceof NumberRun) eachLeaf(v, visit);
    else visit(v);
  }
}

function convert(name: string, dtype: DataType, data: JsonData, count: number): Tensor['data'] {
  const bad = (v: unknown) => new InvalidInputError(`input '${name}': ${String(JSON.stringify(v)).slice(0, 100)} is not a valid ${dtype} value`, name);
  if (dtype === 'BYTES') {
    const strings: string[] = [];
    eachLeaf(data, (v) => { if (typeof v !== 'string') throw bad(v); strings.push(v); });
    return strings;
  }
  const Ctor = typedArrayFor(dtype)!;
  const out = new Ctor(count) as unknown as Record<number, number | bigint>;
  const big = dtype === 'INT64' || dtype === 'UINT64';
  let i = 0;
  eachLeaf(data, (v) => {
    if (dtype === 'BOOL') {
      if (typeof v !== 'boolean' && v !== 0 && v !== 1) throw bad(v);
      out[i] = v ? 1 : 0;
    } else if (big) {
      if ((typeof v !== 'number' || !Number.isInteger(v)) && (typeof v !== 'string' || !/^-?\d+$/.test(v))) throw bad(v);
      const b = BigInt(v);
      if (dtype === 'UINT64' ? b < 0n || b > 0xffff_ffff_ffff_ffffn : b !== BigInt.asIntN(64, b)) throw bad(v);
      out[i] = b;
    } else if (dtype === 'FP16' || dtype === 'FP32' || dtype === 'FP64') {
      const x = typeof v === 'string' && /^-?Infinity$|^NaN$/.test(v) ? Number(v) : v;
      if (typeof x !== 'number') throw bad(v);
      // FP16 travels as its raw half bits, as everywhere in the contract.
      out[i] = dtype === 'FP16' ? toHalfBits(x) : x;
    } else {
      if (typeof v !== 'number' || !Number.isInteger(v)) throw bad(v);
      const conv = new Ctor(1) as unknown as number[];
      conv[0] = v;
      if (conv[0] !== v) throw bad(v);
      out[i] = v;
    }
    i++;
  });
  return out as unknown as Tensor['data'];
}

/** JSON text of a V2 response; bigints become exact JSON numbers. */
export function formatJsonResponse(res: JsonResponse, indent?: number): string {
  if (indent === undefined) return compactJsonResponse(res);
  const body = {
    model_name: res.modelName,
    model_version: res.modelVersion,
    ...(res.id ? { id: res.id } : {}),
    outputs: res.outputs.map(({ name, tensor }) => ({ name, datatype: tensor.dtype, shape: tensor.shape, data: jsonData(tensor) })),
  };
  const text = JSON.stringify(body, (_k, v) => (typeof v === 'bigint' ? `\u0000big:${v}` : v), indent);
  return text.replace(/"\\u0000big:(-?\d+)"/g, '$1');
}

/**
 * The same text, written straight from the typed arrays: no array of boxed numbers per tensor and no replacer call
 * per element (a 3M-row answer took 2.4 GB and stalled the event loop 30 s that way).
 */
function compactJsonResponse(res: JsonResponse): string {
  return [...jsonResponseChunks(res)].join('');
}

export type JsonResponse = { modelName: string; modelVersion: string; id?: string; outputs: NamedTensor[] };

/** Elements per chunk of a tensor's data: bounds what one chunk holds. */
const JSON_BLOCK = 8192;

/**
 * The compact JSON text of a V2 response in pieces of at most JSON_BLOCK elements each, in order, so a front end can
 * write a large answer to its socket as it is made instead of holding all of its text at once.
 */
export function* jsonResponseChunks(res: JsonResponse): Generator<string> {
  yield `{"model_name":${JSON.stringify(res.modelName)},"model_version":${JSON.stringify(res.modelVersion)}${res.id ? `,"id":${JSON.stringify(res.id)}` : ''},"outputs":[`;
  for (let o = 0; o < res.outputs.length; o++) {
    const { name, tensor } = res.outputs[o];
    yield `${o ? ',' : ''}{"name":${JSON.stringify(name)},"datatype":${JSON.stringify(tensor.dtype)},"shape":${JSON.stringify(tensor.shape)},"data":[`;
    yield* jsonDataChunks(tensor);
    yield ']}';
  }
  yield ']}';
}

function* jsonDataChunks(t: Tensor): Generator<string> {
  const data = t.data as ArrayLike<number | bigint | string>;
  const text: (v: number | bigint | string) => string = t.dtype === 'BYTES' ? (v) => JSON.stringify(v)
    : t.dtype === 'BOOL' ? (v) => (v !== 0 ? 'true' : 'false')
      : t.dtype === 'FP16' ? (h) => finiteText(fromHalfBits(h as number))
        : t.dtype === 'FP32' || t.dtype === 'FP64' ? (x) => finiteText(x as number)
          : (v) => String(v);
  const block: string[] = [];
  for (let start = 0; start < data.length; start += JSON_BLOCK) {
    const end = Math.min(start + JSON_BLOCK, data.length);
    block.length = end - start;
    for (let i = start; i < end; i++) block[i - start] = text(data[i]);
    yield (start ? ',' : '') + block.join(',');
  }
}

function finiteText(x: number): string {
  return Number.isFinite(x) ? String(x) : `"${x}"`;
}

function jsonData(t: Tensor): unknown[] {
  if (t.dtype === 'BYTES') return t.data as string[];
  if (t.dtype === 'BOOL') return Array.from(t.data as Uint8Array, (v) => v !== 0);
  if (t.dtype === 'FP16') return Array.from(t.data as Uint16Array, (h) => finite(fromHalfBits(h)));
  if (t.dtype === 'FP32' || t.dtype === 'FP64') return Array.from(t.data as Float64Array, finite);
  return Array.from(t.data as ArrayLike<number | bigint>);
}

function finite(x: number): number | string {
  return Number.isFinite(x) ? x : String(x);
}

function toHalfBits(x: number): number {
  const f = new Float32Array([x]);
  const u = new Uint32Array(f.buffer)[0];
  const sign = (u >>> 16) & 0x8000;
  const exp = ((u >>> 23) & 0xff) - 127 + 15;
  const mant = u & 0x7fffff;
  if (((u >>> 23) & 0xff) === 0xff) return sign | 0x7c00 | (mant ? 0x200 : 0);
  if (exp >= 0x1f) return sign | 0x7c00;
  if (exp <= 0) {
    if (exp < -10) return sign;
    const m = (mant | 0x800000) >> (1 - exp);
    return sign | ((m + 0x1000) >> 13);
  }
  return sign | ((exp << 10) + ((mant + 0x1000) >> 13));
}

function fromHalfBits(h: number): number {
  const sign = h & 0x8000 ? -1 : 1;
  const exp = (h >> 10) & 0x1f;
  const mant = h & 0x3ff;
  if (exp === 0) return sign * mant * 2 ** -24;
  if (exp === 0x1f) return mant ? NaN : sign * Infinity;
  return sign * (1 + mant / 1024) * 2 ** (exp - 15);
}
