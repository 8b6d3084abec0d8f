import protobuf from 'protobufjs/minimal.js';

/**
 * Protobuf wire helpers the generated-code path would hide: 64-bit varints as two uint32 halves (no Long, no
 * per-element BigInt), packed scalar runs, and sub-message bounds. Everything else comes from protobufjs's
 * low-level Reader/Writer.
 */
export const { Reader, Writer } = protobuf;
export type Reader = protobuf.Reader;
export type Writer = protobuf.Writer;

export const WIRE_VARINT = 0;
export const WIRE_FIXED64 = 1;
export const WIRE_LEN = 2;
export const WIRE_FIXED32 = 5;

// Raw tensor bytes are little-endian on the wire; the TypedArray views used for them assume the host agrees.
if (new Uint8Array(new Uint16Array([1]).buffer)[0] !== 1) throw new Error('pyml runtime needs a little-endian host');

/** The two halves of the last varint read by readVarint64 (module state, so the hot loop allocates nothing). */
export const varint = { lo: 0, hi: 0 };

/** Reads one varint of up to 64 bits at `pos` into `varint.lo/hi`; returns the position after it. */
export function readVarint64(buf: Uint8Array, pos: number, end: number): number {
  let lo = 0;
  let hi = 0;
  let b = 0;
  for (let i = 0; i < 4; i++) {
    if (pos >= end) throw new RangeError('truncated varint');
    b = buf[pos++];
    lo |= (b & 0x7f) << (7 * i);
    if (b < 0x80) { varint.lo = lo >>> 0; varint.hi = 0; return pos; }
  }
  if (pos >= end) throw new RangeError('truncated varint');
  b = buf[pos++];
  lo |= (b & 0x7f) << 28;
  hi = (b & 0x7f) >> 4;
  if (b < 0x80) { varint.lo = lo >>> 0; varint.hi = hi >>> 0; return pos; }
  for (let i = 0; i < 5; i++) {
    if (pos >= end) throw new RangeError('truncated varint');
    b = buf[pos++];
    hi |= (b & 0x7f) << (7 * i + 3);
    if (b < 0x80) { varint.lo = lo >>> 0; varint.hi = hi >>> 0; return pos; }
  }
  throw new RangeError('varint longer than 10 bytes');
}

/** Writes a varint from two uint32 halves into `out` at `pos`; returns the position after it. */
export function writeVarint64(out: Uint8Array, pos: number, lo: number, hi: number): number {
  lo >>>= 0;
  hi >>>= 0;
  while (hi !== 0) {
    out[pos++] = (lo & 0x7f) | 0x80;
    lo = ((lo >>> 7) | (hi << 25)) >>> 0;
    hi >>>= 7;
  }
  while (lo > 0x7f) {
    out[pos++] = (lo & 0x7f) | 0x80;
    lo >>>= 7;
  }
  out[pos++] = lo;
  return pos;
}

/** Number of varints in a packed run: one per byte without the continuation bit. */
export function countVarints(buf: Uint8Array, start: number, end: number): number {
  let n = 0;
  for (let i = start; i < end; i++) if (buf[i] < 0x80) n++;
  return n;
}

/** A signed 64-bit varint as a JS number (shapes and dims; exact within ±2^53). */
export function int64ToNumber(lo: number, hi: number): number {
  return (hi | 0) * 0x1_0000_0000 + lo;
}

/** Splits a safe integer into the uint32 halves of its two's-complement 64-bit form. */
export function numberToInt64(value: number): { lo: number; hi: number } {
  const v = BigInt.asUintN(64, BigInt(value));
  return { lo: Number(v & 0xffff_ffffn), hi: Number(v >> 32n) };
}

/** Reads the length prefix of a length-delimited field; returns its end position (checked against the buffer). */
export function lengthDelimitedEnd(r: Reader): number {
  const len = r.uint32();
  const end = r.pos + len;
  if (end > r.len) throw new RangeError(`length-delimited field of ${len} bytes runs past the end of the message`);
  return end;
}

/**
 * Reads a string field. protobufjs's BufferReader cuts a string whose length runs past the end of the message short
 * without a word, which would let a truncated message pass (and be routed by a name it does not hold).
 */
export function readString(r: Reader): string {
  const end = lengthDelimitedEnd(r);
  const buf = r.buf;
  const text = Buffer.from(buf.buffer, buf.byteOffset + r.pos, end - r.pos).toString('utf8');
  r.pos = end;
  return text;
}

/** Writes a packed repeated int64/shape field: tag, length, varints. */
export function writePackedInt64s(w: Writer, field: number, values: readonly number[]): void {
  if (values.length === 0) return;
  const out = new Uint8Array(values.length * 10);
  let pos = 0;
  for (const v of values) {
    const { lo, hi } = numberToInt64(v);
    pos = writeVarint64(out, pos, lo, hi);
  }
  w.uint32((field << 3) | WIRE_LEN).bytes(out.subarray(0, pos));
}

/** Reads repeated int64 (packed or not) as numbers, appending to `into`. */
export function readInt64sInto(r: Reader, wireType: number, into: number[]): void {
  if (wireType === WIRE_LEN) {
    const end = lengthDelimitedEnd(r);
    let pos = r.pos;
    while (pos < end) {
      pos = readVarint64(r.buf, pos, end);
      into.push(int64ToNumber(varint.lo, varint.hi));
    }
    r.pos = end;
  } else {
    r.pos = readVarint64(r.buf, r.pos, r.len);
    into.push(int64ToNumber(varint.lo, varint.hi));
  }
}

/** A Node Buffer over the same bytes (grpc-js serializers must return Buffers; no copy). */
export function asBuffer(bytes: Uint8Array): Buffer {
  return Buffer.isBuffer(bytes) ? bytes : Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
}
