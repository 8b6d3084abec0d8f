/**
 * A copy of an ONNX model for the build's trial load in which the big initializers are not copied but point back
 * into the original file as ONNX external data (location, offset, length of their raw_data there). onnxruntime
 * then maps those bytes instead of parsing them out of the protobuf and copying them: for a 200 MB MatMul, session
 * creation goes from ~3 s of CPU to ~0.1 s, and it still checks every operator, opset, type and initializer size.
 *
 * Everything else is the original's bytes, copied range by range while the file is walked (nothing is held but
 * the list of ranges), so the skeleton is the same model whatever its size. Only initializers of the main graph
 * with raw_data are referenced; typed data fields, strings and subgraphs' tensors stay inline.
 */
import { open } from 'node:fs/promises';
import { FileWireReader, WireType } from './wire-reader.ts';

/** Below this, an initializer is cheaper to parse than to map. */
const MIN_EXTERNAL_BYTES = 1 << 20;

const STRING_TYPE = 8;
const EXTERNAL_LOCATION = 1;

/** Bytes to write, or a range [start, end) of the original file to copy. */
type Piece = Uint8Array | { start: number; end: number };

export interface SkeletonPlan {
  pieces: Piece[];
  /** Initializers referenced in the original file. */
  referenced: number;
}

function varint(n: number): Uint8Array {
  const bytes: number[] = [];
  while (n >= 0x80) { bytes.push((n % 0x80) | 0x80); n = Math.floor(n / 0x80); }
  bytes.push(n);
  return Uint8Array.from(bytes);
}

const lenKey = (field: number) => varint(field * 8 + WireType.LEN);
const sizeOf = (pieces: Piece[]) => pieces.reduce((n, p) => n + (p instanceof Uint8Array ? p.length : p.end - p.start), 0);

function push(pieces: Piece[], piece: Piece): void {
  const last = pieces.at(-1);
  if (!(piece instanceof Uint8Array) && last && !(last instanceof Uint8Array) && last.end === piece.start) last.end = piece.end;
  else pieces.push(piece);
}

/** A length-delimited field whose body is `body`: its key, its new length, then the body. */
function field(pieces: Piece[], fieldNumber: number, body: Piece[]): void {
  pieces.push(lenKey(fieldNumber), varint(sizeOf(body)));
  for (const p of body) push(pieces, p);
}

/** TensorProto.external_data entry (StringStringEntryProto: key = 1, value = 2). */
function externalEntry(key: string, value: string): Uint8Array {
  const k = Buffer.from(key), v = Buffer.from(value);
  const entry = Buffer.concat([lenKey(1), varint(k.length), k, lenKey(2), varint(v.length), v]);
  return Buffer.concat([lenKey(13), varint(entry.length), entry]);
}

/**
 * The skeleton's pieces, with big initializers pointing at `location` (the name the original will have beside
 * the skeleton); undefined when no initializer is big enough to be worth it. Throws WireFormatError on a broken
 * file (the reader has already parsed it, so that is not expected).
 */
export async function planSkeleton(path: string, location: string): Promise<SkeletonPlan | undefined> {
  const r = await FileWireReader.open(path);
  try {
    const pieces: Piece[] = [];
    let referenced = 0;
    while (r.position < r.size) {
      const start = r.position;
      const key = await r.key();
      if (key.field === 7 && key.wireType === WireType.LEN) {
        const length = await r.length(r.size);
        const end = r.position + length;
        const graph = await planGraph(r, end, location);
        if (graph.referenced) { field(pieces, 7, graph.pieces); referenced += graph.referenced; }
        else push(pieces, { start, end });
        r.position = end;
      } else {
        await r.skipValue(key, r.size);
        push(pieces, { start, end: r.position });
      }
    }
    return referenced ? { pieces, referenced } : undefined;
  } finally {
    await r.close();
  }
}

async function planGraph(r: FileWireReader, end: number, location: string): Promise<SkeletonPlan> {
  const pieces: Piece[] = [];
  let referenced = 0;
  while (r.position < end) {
    const start = r.position;
    const key = await r.key();
    if (key.field === 5 && key.wireType === WireType.LEN) {
      const length = await r.length(end);
      const tensorEnd = r.position + length;
      const tensor = await planTensor(r, tensorEnd, location);
      if (tensor) { field(pieces, 5, tensor); referenced++; }
      else push(pieces, { start, end: tensorEnd });
      r.position = tensorEnd;
    } else {
      await r.skipValue(key, end);
      push(pieces, { start, end: r.position });
    }
  }
  return { pieces, referenced };
}

/** A TensorProto's fields with its raw_data replaced by a reference, or undefined to copy it as it is. */
async function planTensor(r: FileWireReader, end: number, location: string): Promise<Piece[] | undefined> {
  const kept: Piece[] = [];
  let raw: { offset: number; length: number } | undefined;
  let dataType = 0, external = false;
  while (r.position < end) {
    const start = r.position;
    const key = await r.key();
    if (key.field === 9 && key.wireType === WireType.LEN) {
      const length = await r.length(end);
      raw = { offset: r.position, length };
      r.skip(length, end);
      continue;
    }
    if (key.field === 2 && key.wireType === WireType.VARINT) dataType = await r.varint();
    else {
      if (key.field === 13 || key.field === 14) external = true;
      await r.skipValue(key, end);
    }
    push(kept, { start, end: r.position });
  }
  if (!raw || raw.length < MIN_EXTERNAL_BYTES || external || dataType === STRING_TYPE) return undefined;
  return [
    ...kept,
    externalEntry('location', location), externalEntry('offset', String(raw.offset)), externalEntry('length', String(raw.length)),
    Uint8Array.of(14 * 8 + WireType.VARINT, EXTERNAL_LOCATION),
  ];
}

/** Writes the planned skeleton of `source` to `out`, copying the original's ranges in bounded chunks. */
export async function writeSkeleton(source: string, plan: SkeletonPlan, out: string): Promise<void> {
  const [input, output] = [await open(source, 'r'), await open(out, 'wx')];
  try {
    const buffer = Buffer.alloc(1 << 20);
    for (const piece of plan.pieces) {
      if (piece instanceof Uint8Array) { await output.write(piece); continue; }
      for (let at = piece.start; at < piece.end;) {
        const { bytesRead } = await input.read(buffer, 0, Math.min(buffer.length, piece.end - at), at);
        if (bytesRead === 0) throw new Error(`${source}: file shrank while its load-check copy was written`);
        await output.write(buffer.subarray(0, bytesRead));
        at += bytesRead;
      }
    }
  } finally {
    await input.close();
    await output.close();
  }
}
