import { type DataType, type Tensor, elementCount, typedArrayFor, isDataType } from '@pyml/contract';
import { InvalidInputError } from '../errors.ts';
import { formatShape } from '../validate.ts';
import {
  type Reader, type Writer, WIRE_FIXED32, WIRE_FIXED64, WIRE_LEN, WIRE_VARINT,
  countVarints, lengthDelimitedEnd, readVarint64, varint, writeVarint64,
} from './wire.ts';

/**
 * Tensor data on the wire, both ways: `InferTensorContents` (one repeated field per element representation) and
 * `raw_*_contents` (flat little-endian bytes). Fixed-width data moves as whole byte ranges; only varint fields
 * are walked element by element, straight into the TypedArray.
 */

/** InferTensorContents field number carrying each dtype; FP16 has none (raw only). */
const CONTENTS_FIELD: Record<DataType, number> = {
  BOOL: 1, INT8: 2, INT16: 2, INT32: 2, INT64: 3, UINT8: 4, UINT16: 4, UINT32: 4, UINT64: 5,
  FP32: 6, FP64: 7, BYTES: 8, FP16: 0,
};
const FIELD_NAME = ['', 'bool_contents', 'int_contents', 'int64_contents', 'uint_contents', 'uint64_contents', 'fp32_contents', 'fp64_contents', 'bytes_contents'];

const utf8 = new TextEncoder();

export function contentsFieldName(dtype: DataType): string {
  return FIELD_NAME[CONTENTS_FIELD[dtype]] || 'raw contents only';
}

/** Range each narrow integer dtype accepts from the 32-bit contents fields. */
const RANGE: Partial<Record<DataType, [number, number]>> = {
  INT8: [-128, 127], INT16: [-32768, 32767], UINT8: [0, 255], UINT16: [0, 65535],
};

/** Parses an InferTensorContents message spanning [start, end) of `r.buf` into a tensor of `dtype`/`shape`. */
export function tensorFromContents(name: string, dtype: DataType, shape: number[], r: Reader, start: number, end: number): Tensor {
  const field = CONTENTS_FIELD[dtype];
  if (field === 0) throw new InvalidInputError(`input '${name}': ${dtype} has no typed contents field; send it in raw_input_contents`, name);
  const chunks: (Tensor['data'])[] = [];
  const savedLen = r.len;
  r.pos = start;
  r.len = end;
  try {
    while (r.pos < end) {
      const tag = r.uint32();
      const f = tag >>> 3;
      const wt = tag & 7;
      if (f === field) chunks.push(readChunk(name, dtype, r, wt));
      else if (f >= 1 && f <= 8) {
        // An empty packed run of another field is harmless; data there means the client picked the wrong field.
        if (wt === WIRE_LEN) {
          const e = lengthDelimitedEnd(r);
          if (e > r.pos) throw new InvalidInputError(`input '${name}': datatype ${dtype} travels in ${FIELD_NAME[field]}, got ${FIELD_NAME[f]}`, name);
          r.pos = e;
        } else throw new InvalidInputError(`input '${name}': datatype ${dtype} travels in ${FIELD_NAME[field]}, got ${FIELD_NAME[f]}`, name);
      } else r.skipType(wt);
    }
  } finally {
    r.len = savedLen;
  }
  const data = concatChunks(dtype, chunks);
  const expected = elementCount(shape);
  if (data.length !== expected) {
    throw new InvalidInputError(`input '${name}': shape ${formatShape(shape)} needs ${expected} elements, ${FIELD_NAME[field]} has ${data.length}`, name);
  }
  return { dtype, shape, data } as Tensor;
}

function readChunk(name: string, dtype: DataType, r: Reader, wt: number): Tensor['data'] {
  const buf = r.buf;
  if (dtype === 'BYTES') {
    if (wt !== WIRE_LEN) throw new InvalidInputError(`input '${name}': malformed bytes_contents`, name);
    const end = lengthDelimitedEnd(r);
    const s = Buffer.from(buf.buffer, buf.byteOffset + r.pos, end - r.pos).toString('utf8');
    r.pos = end;
    return [s];
  }
  const Ctor = typedArrayFor(dtype)!;
  if (dtype === 'FP32' || dtype === 'FP64') {
    const width = dtype === 'FP32' ? 4 : 8;
    let start: number;
    let bytes: number;
    if (wt === WIRE_LEN) {
      const end = lengthDelimitedEnd(r);
      start = r.pos;
      bytes = end - start;
      if (bytes % width !== 0) throw new InvalidInputError(`input '${name}': packed ${contentsFieldName(dtype)} is ${bytes} bytes, not a multiple of ${width}`, name);
    } else if (wt === (width === 4 ? WIRE_FIXED32 : WIRE_FIXED64)) {
      start = r.pos;
      bytes = width;
      if (start + bytes > r.len) throw new RangeError('truncated fixed-width field');
    } else throw new InvalidInputError(`input '${name}': malformed ${contentsFieldName(dtype)}`, name);
    // Copy the packed little-endian run into an aligned buffer: one memcpy, no per-element work.
    const copy = Buffer.allocUnsafeSlow(bytes);
    copy.set(buf.subarray(start, start + bytes));
    r.pos = start + bytes;
    return new Ctor(copy.buffer, 0, bytes / width);
  }
  // Varint-encoded dtypes: BOOL, INT*, UINT*.
  let start: number;
  let end: number;
  if (wt === WIRE_LEN) {
    end = lengthDelimitedEnd(r);
    start = r.pos;
  } else if (wt === WIRE_VARINT) {
    start = r.pos;
    end = r.len;
  } else throw new InvalidInputError(`input '${name}': malformed ${contentsFieldName(dtype)}`, name);
  const n = wt === WIRE_LEN ? countVarints(buf, start, end) : 1;
  const out = new Ctor(n);
  const wide = dtype === 'INT64' || dtype === 'UINT64' ? new Uint32Array(out.buffer as ArrayBuffer, out.byteOffset, n * 2) : undefined;
  const range = RANGE[dtype];
  const signed32 = dtype === 'INT8' || dtype === 'INT16' || dtype === 'INT32';
  let pos = start;
  for (let i = 0; i < n; i++) {
    pos = readVarint64(buf, pos, end);
    if (wide) {
      wide[2 * i] = varint.lo;
      wide[2 * i + 1] = varint.hi;
    } else if (dtype === 'BOOL') {
      (out as Uint8Array)[i] = varint.lo !== 0 || varint.hi !== 0 ? 1 : 0;
    } else {
      const v = signed32 ? varint.lo | 0 : varint.lo;
      if (range && (v < range[0] || v > range[1])) throw new InvalidInputError(`input '${name}': value ${v} is out of range for ${dtype}`, name);
      (out as Int32Array)[i] = v;
    }
  }
  r.pos = wt === WIRE_LEN ? end : pos;
  return out;
}

function concatChunks(dtype: DataType, chunks: Tensor['data'][]): Tensor['data'] {
  if (dtype === 'BYTES') return (chunks as string[][]).flat();
  const Ctor = typedArrayFor(dtype)!;
  if (chunks.length === 1) return chunks[0];
  const total = chunks.reduce((n, c) => n + c.length, 0);
  const out = new Ctor(total) as unknown as { set(a: ArrayLike<unknown>, o: number): void };
  let o = 0;
  for (const c of chunks) {
    out.set(c as ArrayLike<unknown>, o);
    o += c.length;
  }
  return out as unknown as Tensor['data'];
}

/** Builds a tensor from one raw_*_contents entry: a view when aligned, else one copy; BYTES are length-prefixed. */
export function tensorFromRaw(name: string, dtype: DataType, shape: number[], bytes: Uint8Array): Tensor {
  const expected = elementCount(shape);
  if (dtype === 'BYTES') {
    const strings: string[] = [];
    const view = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
    let pos = 0;
    while (pos < view.length) {
      if (pos + 4 > view.length) throw new InvalidInputError(`input '${name}': raw BYTES element ${strings.length} has a truncated length prefix`, name);
      const len = view.readUInt32LE(pos);
      pos += 4;
      if (pos + len > view.length) throw new InvalidInputError(`input '${name}': raw BYTES element ${strings.length} runs past the end of its contents`, name);
      strings.push(view.toString('utf8', pos, pos + len));
      pos += len;
    }
    if (strings.length !== expected) throw new InvalidInputError(`input '${name}': shape ${formatShape(shape)} needs ${expected} elements, raw contents hold ${strings.length}`, name);
    return { dtype, shape, data: strings };
  }
  const Ctor = typedArrayFor(dtype)!;
  const width = Ctor.BYTES_PER_ELEMENT;
  if (bytes.byteLength !== expected * width) {
    throw new InvalidInputError(
      `input '${name}': shape ${formatShape(shape)} of ${dtype} needs ${expected * width} bytes of raw contents, got ${bytes.byteLength}`, name);
  }
  if (bytes.byteOffset % width === 0) return { dtype, shape, data: new Ctor(bytes.buffer, bytes.byteOffset, expected) } as Tensor;
  // allocUnsafeSlow: its own ArrayBuffer at offset 0 (aligned), and no zero-fill before the copy overwrites it.
  const copy = Buffer.allocUnsafeSlow(bytes.byteLength);
  copy.set(bytes);
  return { dtype, shape, data: new Ctor(copy.buffer, 0, expected) } as Tensor;
}

/** The raw little-endian bytes of a tensor (a view for fixed-width data; length-prefixed elements for BYTES). */
export function rawBytesOf(t: Tensor): Uint8Array {
  if (t.dtype === 'BYTES') {
    const parts = (t.data as string[]).map((s) => utf8.encode(s));
    const out = Buffer.allocUnsafe(parts.reduce((n, p) => n + 4 + p.length, 0));
    let pos = 0;
    for (const p of parts) {
      out.writeUInt32LE(p.length, pos);
      out.set(p, pos + 4);
      pos += 4 + p.length;
    }
    return out;
  }
  const d = t.data as Exclude<Tensor['data'], string[]>;
  return new Uint8Array(d.buffer, d.byteOffset, d.byteLength);
}

/** Writes an InferTensorContents message body (the caller wraps it in a field) for a tensor. */
export function writeContents(w: Writer, t: Tensor): void {
  const field = CONTENTS_FIELD[t.dtype];
  if (field === 0) throw new Error(`${t.dtype} has no typed contents field`);
  const tagLen = (field << 3) | WIRE_LEN;
  if (t.dtype === 'BYTES') {
    for (const s of t.data as string[]) w.uint32(tagLen).bytes(utf8.encode(s));
    return;
  }
  if (t.data.length === 0) return;
  if (t.dtype === 'FP32' || t.dtype === 'FP64') {
    w.uint32(tagLen).bytes(rawBytesOf(t));
    return;
  }
  const d = t.data as Exclude<Tensor['data'], string[]>;
  const n = d.length;
  const out = new Uint8Array(n * 10);
  let pos = 0;
  if (t.dtype === 'INT64' || t.dtype === 'UINT64') {
    const halves = new Uint32Array(d.buffer, d.byteOffset, n * 2);
    for (let i = 0; i < n; i++) pos = writeVarint64(out, pos, halves[2 * i], halves[2 * i + 1]);
  } else if (t.dtype === 'BOOL') {
    for (let i = 0; i < n; i++) out[pos++] = (d as Uint8Array)[i] ? 1 : 0;
  } else if (t.dtype === 'INT8' || t.dtype === 'INT16' || t.dtype === 'INT32') {
    // Negative int32 values are sign-extended to 64 bits on the wire.
    for (let i = 0; i < n; i++) {
      const v = (d as Int32Array)[i];
      pos = writeVarint64(out, pos, v >>> 0, v < 0 ? 0xffff_ffff : 0);
    }
  } else {
    for (let i = 0; i < n; i++) pos = writeVarint64(out, pos, (d as Uint32Array)[i], 0);
  }
  w.uint32(tagLen).bytes(out.subarray(0, pos));
}

/** Parses a datatype string from the wire, naming the tensor when it is not one of ours. */
export function parseDataType(name: string, datatype: string): DataType {
  if (!isDataType(datatype)) throw new InvalidInputError(`input '${name}': unknown datatype '${datatype}'`, name);
  return datatype;
}
