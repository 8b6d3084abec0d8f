import type { IncomingHttpHeaders, OutgoingHttpHeaders } from 'node:http2';
import { gunzip, inflate } from 'node:zlib';
import { Metadata, status } from '@grpc/grpc-js';
import { grpcMessage } from '@pyml/runtime/protocol';
import { RpcFailure } from './rpc-failure.ts';

/**
 * gRPC over HTTP/2, the parts the service's forwarding path speaks itself (see grpc/doc/PROTOCOL-HTTP2.md): a
 * message is a 5-byte prefix (compressed flag, big-endian length) and its bytes; the call's status travels in
 * trailers, or alone in the response headers ("trailers-only"); the deadline is the `grpc-timeout` header.
 * The service forwards with node:http2 rather than through grpc-js's client and server: two grpc-js hops measured
 * ×4 a single hop's latency on this kind of machine, two node:http2 hops ×2.3 (bench/serve's two-hop rows).
 */
export const GRPC_CONTENT_TYPE = 'application/grpc';

/** Headers that belong to the transport, never to a call's metadata. */
const RESERVED = ['content-type', 'te', 'user-agent', 'date', 'grpc-status', 'grpc-message', 'grpc-timeout', 'grpc-encoding', 'grpc-accept-encoding'];

/** One message with its 5-byte prefix (not compressed). */
export function frame(message: Buffer): Buffer {
  const out = Buffer.allocUnsafe(5 + message.length);
  out[0] = 0;
  out.writeUInt32BE(message.length, 1);
  message.copy(out, 5);
  return out;
}

/**
 * Collects the DATA of a unary call's single message, refusing one larger than `maxBytes` as soon as its prefix
 * says so (before the rest arrives).
 */
export class UnaryMessage {
  private readonly chunks: Buffer[] = [];
  private received = 0;
  private sizeChecked = false;

  /**
   * `malformed`: the status for DATA that is not one well-framed message: INVALID_ARGUMENT for a caller's request,
   * INTERNAL for a model's response.
   */
  constructor(private readonly maxBytes: number, private readonly what: string, private readonly malformed: status = status.INTERNAL) {}

  push(chunk: Buffer): void {
    this.chunks.push(chunk);
    this.received += chunk.length;
    if (!this.sizeChecked && this.received >= 5) {
      this.sizeChecked = true;
      const length = this.prefix().readUInt32BE(1);
      if (length > this.maxBytes) throw new RpcFailure(status.RESOURCE_EXHAUSTED, `${this.what} message of ${length} bytes is larger than the limit of ${this.maxBytes} bytes`);
    }
    // A peer that sends more than its prefix announced is cut off as soon as it passes the limit.
    if (this.received > this.maxBytes + 5) throw new RpcFailure(status.RESOURCE_EXHAUSTED, `${this.what} carries more than the limit of ${this.maxBytes} bytes`);
  }

  /**
   * The message's bytes, uncompressed as `encoding` says: a Buffer when it was not compressed (the hot path takes no
   * extra turn), else a promise. Decompression runs on zlib's thread pool, never blocking the event loop, and stops
   * at the message limit (RESOURCE_EXHAUSTED): a small gzip bomb costs no more than a message of the limit.
   */
  message(encoding?: string): Buffer | Promise<Buffer> {
    const all = this.chunks.length === 1 ? this.chunks[0] : Buffer.concat(this.chunks);
    if (all.length < 5) throw new RpcFailure(this.malformed, `${this.what} has no message (${all.length} bytes of DATA)`);
    const length = all.readUInt32BE(1);
    if (all.length !== 5 + length) throw new RpcFailure(this.malformed, `${this.what} has ${all.length - 5} bytes of DATA for a message of ${length} bytes (a unary call carries exactly one message)`);
    const body = all.subarray(5);
    if (all[0] === 0) return body;
    const inflater = encoding === 'gzip' ? gunzip : encoding === 'deflate' ? inflate : undefined;
    if (!inflater) throw new RpcFailure(status.UNIMPLEMENTED, `${this.what} is compressed with '${encoding ?? 'no grpc-encoding'}'; this service accepts identity, gzip and deflate`);
    return new Promise((resolve, reject) => {
      inflater(body, { maxOutputLength: this.maxBytes }, (error, out) => {
        if (!error) return resolve(out);
        if ((error as NodeJS.ErrnoException).code === 'ERR_BUFFER_TOO_LARGE') {
          return reject(new RpcFailure(status.RESOURCE_EXHAUSTED, `${this.what} decompresses to more than the limit of ${this.maxBytes} bytes`));
        }
        reject(new RpcFailure(this.malformed, `${this.what} is not valid ${encoding} data: ${error.message}`));
      });
    });
  }

  private prefix(): Buffer {
    return this.chunks[0].length >= 5 ? this.chunks[0] : Buffer.concat(this.chunks);
  }
}

const TIMEOUT_UNIT_MS: Record<string, number> = { H: 3_600_000, M: 60_000, S: 1000, m: 1, u: 1e-3, n: 1e-6 };

/** `grpc-timeout` (1–8 digits and a unit) in milliseconds; undefined when absent or malformed. */
export function parseTimeout(value: string | string[] | undefined): number | undefined {
  const match = typeof value === 'string' ? /^(\d{1,8})([HMSmun])$/.exec(value) : null;
  return match ? Number(match[1]) * TIMEOUT_UNIT_MS[match[2]] : undefined;
}

/** Milliseconds as a `grpc-timeout` value, rounded up so a call is never given less time than it has. */
export function formatTimeout(ms: number): string {
  const whole = Math.max(1, Math.ceil(ms));
  return whole < 1e8 ? `${whole}m` : `${Math.ceil(whole / 1000)}S`;
}

/** A call's status as trailers (or as trailers-only response headers). */
export function statusHeaders(code: status, details: string, metadata?: Metadata): OutgoingHttpHeaders {
  // Percent-encoded as grpc-js does (clients decode grpc-message with decodeURI), and never throwing on what a
  // caller wrote into the details.
  return { ...(metadata ? metadata.toHttp2Headers() : {}), 'grpc-status': String(code), 'grpc-message': grpcMessage(details) };
}

/** The metadata a peer sent in headers or trailers, without the transport's own headers. */
export function metadataOf(headers: IncomingHttpHeaders): Metadata {
  const metadata = Metadata.fromHttp2Headers(headers);
  for (const name of RESERVED) metadata.remove(name);
  return metadata;
}

/** The status in trailers (or trailers-only headers); undefined when they carry none. */
export function statusOf(headers: IncomingHttpHeaders): RpcFailure | { code: status.OK } | undefined {
  const raw = headers['grpc-status'];
  if (raw === undefined) return undefined;
  const code = Number(raw);
  if (code === status.OK) return { code: status.OK };
  let details = String(headers['grpc-message'] ?? '');
  try {
    details = decodeURI(details);
  } catch {
    // Not percent-encoded after all: keep it as it came.
  }
  return new RpcFailure(Number.isInteger(code) ? code : status.UNKNOWN, details, metadataOf(headers));
}
