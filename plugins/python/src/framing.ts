/**
 * The sidecar wire format (the twin of python/pyml/_framing.py). A frame is a u32 LE body length, then the body:
 * u32 LE header length, the header (UTF-8 JSON), zero padding to a multiple of 8 from the body's start, then the
 * data section: the raw little-endian bytes of each fixed-width tensor at the 8-aligned `offset` (from the data
 * section's start) its header entry names, aligned so numpy and typed arrays view them without a copy. BYTES
 * tensors travel in the header as string lists.
 */
import { bytesPerElement, elementCount, typedArrayFor, type DataType, type Tensor, type Tensors } from '@pyml/contract';

export interface WireTensor {
  name: string;
  dtype: DataType;
  shape: number[];
  offset?: number;
  nbytes?: number;
  strings?: string[];
}

export interface FrameHeader {
  id: number;
  op?: string;
  ok?: boolean;
  error?: string;
  kind?: 'invalid' | 'internal';
  traceback?: string;
  tensors?: WireTensor[];
  [key: string]: unknown;
}

const align8 = (n: number) => (n + 7) & ~7;

/** Encodes one frame as a list of buffers (header chunk, then each tensor's bytes and padding), for writev. */
export function encodeFrame(header: FrameHeader, tensors?: Tensors): Uint8Array[] {
  const entries: WireTensor[] = [];
  const data: Uint8Array[] = [];
  for (const [name, t] of Object.entries(tensors ?? {})) {
    if (t.dtype === 'BYTES') {
      entries.push({ name, dtype: 'BYTES', shape: t.shape, strings: t.data as string[] });
    } else {
      const d = t.data as Exclude<Tensor['data'], string[]>;
      const bytes = new Uint8Array(d.buffer, d.byteOffset, d.byteLength);
      entries.push({ name, dtype: t.dtype, shape: t.shape, nbytes: bytes.byteLength });
      data.push(bytes);
    }
  }
  // Offsets count from the data section (8-aligned after the header), so they do not depend on the header's length.
  let pos = 0;
  for (const e of entries) {
    if (e.dtype === 'BYTES') continue;
    e.offset = pos;
    pos = align8(pos + e.nbytes!);
  }
  const json = Buffer.from(JSON.stringify(entries.length ? { ...header, tensors: entries } : header), 'utf8');
  const start = align8(4 + json.length);
  const head = Buffer.alloc(4 + start);
  head.writeUInt32LE(start + pos, 0);
  head.writeUInt32LE(json.length, 4);
  json.copy(head, 8);
  const parts: Uint8Array[] = [head];
  let at = 0;
  for (const bytes of data) {
    parts.push(bytes);
    at += bytes.byteLength;
    const pad = align8(at) - at;
    if (pad) { parts.push(new Uint8Array(pad)); at += pad; }
  }
  return parts;
}

/** Splits a byte stream into frame bodies, each copied once into its own (8-aligned) ArrayBuffer. */
export class FrameReader {
  private body?: Uint8Array;
  private filled = 0;
  private lengthBytes = Buffer.alloc(4);
  private lengthFilled = 0;

  constructor(private readonly onFrame: (body: Uint8Array) => void, private readonly maxFrameBytes = 2 ** 31) {}

  push(chunk: Uint8Array): void {
    let i = 0;
    while (i < chunk.length) {
      if (!this.body) {
        const n = Math.min(4 - this.lengthFilled, chunk.length - i);
        this.lengthBytes.set(chunk.subarray(i, i + n), this.lengthFilled);
        this.lengthFilled += n;
        i += n;
        if (this.lengthFilled < 4) return;
        const size = this.lengthBytes.readUInt32LE(0);
        if (size < 4 || size > this.maxFrameBytes) throw new Error(`sidecar frame of ${size} bytes is out of bounds`);
        this.body = new Uint8Array(new ArrayBuffer(size));
        this.filled = 0;
        this.lengthFilled = 0;
      }
      const n = Math.min(this.body.length - this.filled, chunk.length - i);
      this.body.set(chunk.subarray(i, i + n), this.filled);
      this.filled += n;
      i += n;
      if (this.filled === this.body.length) {
        const body = this.body;
        this.body = undefined;
        this.onFrame(body);
      }
    }
  }
}

/** The header and tensors of one frame body; fixed-width tensors are views into the body (no copy). */
export function decodeFrame(body: Uint8Array): { header: FrameHeader; tensors: Tensors } {
  const view = new DataView(body.buffer, body.byteOffset, body.byteLength);
  const hlen = view.getUint32(0, true);
  if (4 + hlen > body.length) throw new Error(`sidecar frame header of ${hlen} bytes overruns its ${body.length}-byte frame`);
  const header = JSON.parse(Buffer.from(body.buffer, body.byteOffset + 4, hlen).toString('utf8')) as FrameHeader;
  const tensors: Tensors = {};
  const dataStart = align8(4 + hlen);
  for (const t of header.tensors ?? []) {
    if (t.dtype === 'BYTES') {
      tensors[t.name] = { dtype: 'BYTES', shape: t.shape, data: t.strings ?? [] };
      continue;
    }
    const Ctor = typedArrayFor(t.dtype);
    if (!Ctor) throw new Error(`sidecar output '${t.name}' has unknown dtype ${String(t.dtype)}`);
    const count = elementCount(t.shape);
    const offset = dataStart + (t.offset ?? 0);
    if (offset % 8 !== 0 || offset + count * bytesPerElement(t.dtype) > body.length) {
      throw new Error(`sidecar output '${t.name}' (${count} × ${t.dtype} at ${offset}) does not fit its ${body.length}-byte frame`);
    }
    tensors[t.name] = { dtype: t.dtype, shape: t.shape, data: new Ctor(body.buffer, body.byteOffset + offset, count) } as Tensor;
  }
  return { header, tensors };
}
