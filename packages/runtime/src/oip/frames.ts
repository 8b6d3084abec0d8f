import type { Socket } from 'node:net';
import { Metadata, status } from './grpc-core.ts';
import { RpcFailure, metadataOf } from './grpc-wire.ts';
import { INFERENCE_SERVICE } from './service.ts';

/**
 * pyml's framed protocol between `pyml serve` and the model processes it started, on a Unix socket of their own
 * (the model's gRPC socket stays for outside clients). One connection carries many calls at once, told apart by a
 * call id; a frame is a 9-byte header (body length u32, type u8, call id u32, big-endian) and its body:
 *
 *   CALL    front → model  method u8, timeout ms u32 (NO_TIMEOUT: none), name and version (u16 length + UTF-8
 *                          each), then the request as the client sent it: a ModelInferRequest's protobuf bytes,
 *                          or for REST_INFER the JSON body
 *   RESULT  model → front  kind u8 (PROTO: the gRPC response message; JSON: a REST answer's text), then its bytes
 *   FAILURE model → front  JSON {code, message, http?, metadata?}: the call's gRPC status, the HTTP status a REST
 *                          call answers with, trailer metadata such as `pyml-tensor`
 *   CANCEL  front → model  empty: the caller went away; the model drops the answer
 *
 * Against gRPC over HTTP/2 for the same hop (HPACK headers, flow control, a stream per call, trailers) a call is
 * two small writes. Sizes are checked from the header before a body is buffered: a frame over the limit fails its
 * call (RESOURCE_EXHAUSTED) and its bytes are skipped as they come, never held.
 */

export const FRAME_HEADER_BYTES = 9;
export const FrameType = { CALL: 1, RESULT: 2, FAILURE: 3, CANCEL: 4 } as const;
export type FrameType = (typeof FrameType)[keyof typeof FrameType];

/** The methods a CALL names; the gRPC ones carry (and answer) the V2 protobuf messages. */
export const FRAME_METHODS = ['ModelInfer', 'ModelMetadata', 'ModelReady', 'RestInfer'] as const;
export type FrameMethod = (typeof FRAME_METHODS)[number];
export const RESULT_PROTO = 0;
export const RESULT_JSON = 1;
export const NO_TIMEOUT = 0xffffffff;
/** Longest model name or version a CALL carries. */
export const MAX_FRAME_NAME_BYTES = 1024;
/** What a CALL's body holds besides the request: its room above the message limit. */
export const CALL_OVERHEAD_BYTES = 1 + 4 + 2 * (2 + MAX_FRAME_NAME_BYTES);

/** The gRPC path of a frame method (REST_INFER has none). */
export function grpcPathOf(method: FrameMethod): string | undefined {
  return method === 'RestInfer' ? undefined : `/${INFERENCE_SERVICE}/${method}`;
}

function header(type: FrameType, id: number, bodyBytes: number): Buffer {
  const out = Buffer.allocUnsafe(FRAME_HEADER_BYTES);
  out.writeUInt32BE(bodyBytes, 0);
  out[4] = type;
  out.writeUInt32BE(id, 5);
  return out;
}

/** Pieces below this size are copied into one write (one syscall); larger ones are written as they are. */
const COPY_BELOW = 64 * 1024;

/** Writes one frame: the header and the body's parts, in one write when small. */
export function writeFrame(socket: Socket, type: FrameType, id: number, parts: readonly Buffer[]): boolean {
  let size = 0;
  for (const p of parts) size += p.length;
  if (size < COPY_BELOW) {
    const out = Buffer.allocUnsafe(FRAME_HEADER_BYTES + size);
    out.writeUInt32BE(size, 0);
    out[4] = type;
    out.writeUInt32BE(id, 5);
    let at = FRAME_HEADER_BYTES;
    for (const p of parts) at += p.copy(out, at);
    return socket.write(out);
  }
  socket.cork();
  socket.write(header(type, id, size));
  let more = true;
  for (const p of parts) more = socket.write(p);
  socket.uncork();
  return more;
}

export interface CallFrame {
  method: FrameMethod;
  /** Milliseconds the caller gives the call, from when the frame arrived; undefined for none. */
  timeoutMs?: number;
  name: string;
  version: string;
  request: Buffer;
}

/** The CALL fields before the request (method, timeout, name, version), checked; their size is `bytes`. */
interface CallHead { method: number; timeout: number; nameBytes: number; versionBytes: number; bytes: number }

function callHead(call: CallFrame): CallHead {
  const method = FRAME_METHODS.indexOf(call.method);
  if (method < 0) throw new Error(`no frame method ${call.method}`);
  const nameBytes = Buffer.byteLength(call.name);
  const versionBytes = Buffer.byteLength(call.version);
  if (nameBytes > MAX_FRAME_NAME_BYTES || versionBytes > MAX_FRAME_NAME_BYTES) {
    throw new RpcFailure(status.INVALID_ARGUMENT, `a model name or version is at most ${MAX_FRAME_NAME_BYTES} bytes`);
  }
  const timeout = call.timeoutMs === undefined || !Number.isFinite(call.timeoutMs) ? NO_TIMEOUT : Math.min(NO_TIMEOUT - 1, Math.max(1, Math.ceil(call.timeoutMs)));
  return { method, timeout, nameBytes, versionBytes, bytes: 1 + 4 + 2 + nameBytes + 2 + versionBytes };
}

/** Writes the CALL fields into `out` at `at`; returns where the request goes. */
function writeCallHead(out: Buffer, at: number, call: CallFrame, head: CallHead): number {
  out[at] = head.method;
  out.writeUInt32BE(head.timeout, at + 1);
  out.writeUInt16BE(head.nameBytes, at + 5);
  out.write(call.name, at + 7, head.nameBytes, 'utf8');
  out.writeUInt16BE(head.versionBytes, at + 7 + head.nameBytes);
  out.write(call.version, at + 9 + head.nameBytes, head.versionBytes, 'utf8');
  return at + head.bytes;
}

/** A CALL's body parts (the request is not copied when large). */
export function callFrameParts(call: CallFrame): Buffer[] {
  const head = callHead(call);
  const out = Buffer.allocUnsafe(head.bytes);
  writeCallHead(out, 0, call, head);
  return [out, call.request];
}

/**
 * Writes a whole CALL frame: made in one buffer, one write, when small (the per-request path allocates nothing
 * else); a large request goes out after its header without a copy. Throws, before writing, for a bad name or method.
 */
export function writeCallFrame(socket: Socket, id: number, call: CallFrame): boolean {
  const head = callHead(call);
  const bodyBytes = head.bytes + call.request.length;
  if (bodyBytes >= COPY_BELOW) return writeFrame(socket, FrameType.CALL, id, callFrameParts(call));
  const out = Buffer.allocUnsafe(FRAME_HEADER_BYTES + bodyBytes);
  out.writeUInt32BE(bodyBytes, 0);
  out[4] = FrameType.CALL;
  out.writeUInt32BE(id, 5);
  call.request.copy(out, writeCallHead(out, FRAME_HEADER_BYTES, call, head));
  return socket.write(out);
}

/** A CALL's body read back; a malformed one is INVALID_ARGUMENT naming what is wrong. */
export function readCallFrame(body: Buffer): CallFrame {
  const bad = (what: string) => new RpcFailure(status.INVALID_ARGUMENT, `malformed call frame: ${what}`);
  if (body.length < 9) throw bad(`${body.length} bytes, fewer than its fixed fields`);
  const method = FRAME_METHODS[body[0]];
  if (!method) throw new RpcFailure(status.UNIMPLEMENTED, `this model server has no frame method ${body[0]}`);
  const timeout = body.readUInt32BE(1);
  const nameBytes = body.readUInt16BE(5);
  if (7 + nameBytes + 2 > body.length) throw bad('its model name runs past its end');
  const versionBytes = body.readUInt16BE(7 + nameBytes);
  const start = 9 + nameBytes + versionBytes;
  if (start > body.length) throw bad('its model version runs past its end');
  return {
    method,
    timeoutMs: timeout === NO_TIMEOUT ? undefined : timeout,
    name: body.toString('utf8', 7, 7 + nameBytes),
    version: body.toString('utf8', 9 + nameBytes, start),
    request: body.subarray(start),
  };
}

/** A call's failure as it travels: its gRPC status, and for a REST call the HTTP status to answer with. */
export class FrameFailure extends RpcFailure {
  constructor(code: status, message: string, metadata?: Metadata, readonly httpStatus?: number) {
    super(code, message, metadata);
  }
}

export function failureFrameBody(failure: RpcFailure): Buffer {
  const http = failure instanceof FrameFailure ? failure.httpStatus : undefined;
  const metadata = failure.metadata?.toHttp2Headers();
  return Buffer.from(JSON.stringify({ code: failure.code, message: failure.message, ...(http ? { http } : {}), ...(metadata && Object.keys(metadata).length ? { metadata } : {}) }));
}

export function readFailureFrame(body: Buffer): FrameFailure {
  try {
    const f = JSON.parse(body.toString('utf8')) as { code?: unknown; message?: unknown; http?: unknown; metadata?: unknown };
    if (typeof f.code !== 'number' || typeof f.message !== 'string') throw new Error('no code or message');
    const metadata = f.metadata && typeof f.metadata === 'object' ? metadataOf(f.metadata as Record<string, string>) : undefined;
    return new FrameFailure(f.code, f.message, metadata, typeof f.http === 'number' ? f.http : undefined);
  } catch (error) {
    return new FrameFailure(status.INTERNAL, `the model sent a malformed failure frame: ${(error as Error).message}`);
  }
}

export interface FrameSink {
  /** A whole frame (the body is a view of the bytes read, valid until the next chunk). */
  frame(type: number, id: number, body: Buffer): void;
  /** A frame whose body is over the limit: its bytes are being skipped. */
  oversize(type: number, id: number, bodyBytes: number): void;
}

/**
 * Cuts a byte stream into frames, holding at most one partial frame of at most `maxBodyBytes`: a larger frame is
 * reported from its header and its body skipped as it arrives. Whole frames inside one chunk are handed out as views
 * of it (no copy).
 */
export class FrameReader {
  private pending: Buffer[] = [];
  private pendingBytes = 0;
  /** Bytes of an oversize frame still to skip. */
  private skipping = 0;

  constructor(private readonly maxBodyBytes: number, private readonly sink: FrameSink) {}

  push(chunk: Buffer): void {
    if (this.skipping > 0) {
      const skip = Math.min(this.skipping, chunk.length);
      this.skipping -= skip;
      chunk = chunk.subarray(skip);
      if (chunk.length === 0) return;
    }
    let buf: Buffer;
    if (this.pendingBytes === 0) buf = chunk;
    else {
      this.pending.push(chunk);
      this.pendingBytes += chunk.length;
      // Wait for the whole frame before joining the pieces (one copy per large frame, not one per chunk).
      const first = this.pending[0];
      if (this.pendingBytes < FRAME_HEADER_BYTES) return;
      const head = first.length >= FRAME_HEADER_BYTES ? first : Buffer.concat(this.pending, this.pendingBytes);
      const need = FRAME_HEADER_BYTES + head.readUInt32BE(0);
      if (this.pendingBytes < need && need - FRAME_HEADER_BYTES <= this.maxBodyBytes) return;
      buf = Buffer.concat(this.pending, this.pendingBytes);
      this.pending = [];
      this.pendingBytes = 0;
    }
    let at = 0;
    while (buf.length - at >= FRAME_HEADER_BYTES) {
      const bodyBytes = buf.readUInt32BE(at);
      const type = buf[at + 4];
      const id = buf.readUInt32BE(at + 5);
      if (bodyBytes > this.maxBodyBytes) {
        const available = buf.length - at - FRAME_HEADER_BYTES;
        this.skipping = Math.max(0, bodyBytes - available);
        at = Math.min(buf.length, at + FRAME_HEADER_BYTES + bodyBytes);
        this.sink.oversize(type, id, bodyBytes);
        continue;
      }
      const end = at + FRAME_HEADER_BYTES + bodyBytes;
      if (end > buf.length) break;
      this.sink.frame(type, id, buf.subarray(at + FRAME_HEADER_BYTES, end));
      at = end;
    }
    if (at < buf.length) {
      this.pending = [buf.subarray(at)];
      this.pendingBytes = buf.length - at;
    }
  }
}

/** The failure for an oversize frame: what it carried, its size and the limit. */
export function oversizeFailure(what: string, bodyBytes: number, maxMessageBytes: number): RpcFailure {
  return new RpcFailure(status.RESOURCE_EXHAUSTED, `${what} of ${bodyBytes} bytes is larger than the limit of ${maxMessageBytes} bytes`);
}
