import http2, { type Http2Server, type IncomingHttpHeaders, type OutgoingHttpHeaders, type ServerHttp2Session, type ServerHttp2Stream } from 'node:http2';
import { gunzip, inflate } from 'node:zlib';
import { Metadata, status } from './grpc-core.ts';
import { InvalidInputError } from '../errors.ts';
import { grpcMessage } from '../header-text.ts';
import type { WatchCall } from './health-watch.ts';

/**
 * gRPC over HTTP/2, spoken with node:http2 by the image's model server and by `pyml serve`'s front and forwarding
 * path (see grpc/doc/PROTOCOL-HTTP2.md): a message is a 5-byte prefix (compressed flag, big-endian length) and its
 * bytes; the call's status travels in trailers, or alone in the response headers ("trailers-only"); the deadline is
 * the `grpc-timeout` header. Nothing here goes through grpc-js's server or client: two grpc-js hops measured ×4 a
 * single hop's latency on this kind of machine, two node:http2 hops ×2.3 (bench/serve's two-hop rows), and grpc-js's
 * server answers a corrupt compressed request INTERNAL before any code of ours runs.
 */
export const GRPC_CONTENT_TYPE = 'application/grpc';
/** The message encodings a server here accepts (sent with an UNIMPLEMENTED encoding, as gRPC's compression.md asks). */
export const GRPC_ACCEPT_ENCODING = 'identity,deflate,gzip';

/** Headers that belong to the transport, never to a call's metadata. */
const RESERVED = ['content-type', 'te', 'user-agent', 'date', 'grpc-status', 'grpc-message', 'grpc-timeout', 'grpc-encoding', 'grpc-accept-encoding'];

/** A call's failure with its gRPC status (and trailers, e.g. the model's `pyml-tensor`). */
export class RpcFailure extends Error {
  constructor(readonly code: status, message: string, readonly metadata?: Metadata) {
    super(message);
  }

  /** What a grpc-js unary callback takes. */
  toServiceError(): { code: status; details: string; metadata?: Metadata } {
    return { code: this.code, details: this.message, ...(this.metadata ? { metadata: this.metadata } : {}) };
  }
}

/**
 * Any error as an RpcFailure: ours as they are, a request that does not decode (the codec's InvalidInputError)
 * INVALID_ARGUMENT, anything else INTERNAL (a bug here, not the caller's fault).
 */
export function asRpcFailure(error: unknown): RpcFailure {
  if (error instanceof RpcFailure) return error;
  if (error instanceof InvalidInputError) return new RpcFailure(status.INVALID_ARGUMENT, error.message);
  return new RpcFailure(status.INTERNAL, `internal error: ${(error as Error).message}`);
}

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
   * An encoding this side does not know is UNIMPLEMENTED (gRPC's compression.md); the compressed flag with no
   * encoding (or identity) is a malformed message: compression.md's test list says INTERNAL, but that would blame
   * this side for the peer's framing, so a request gets INVALID_ARGUMENT (`malformed`) naming the flag.
   */
  message(encoding?: string): Buffer | Promise<Buffer> {
    const all = this.chunks.length === 1 ? this.chunks[0] : Buffer.concat(this.chunks);
    if (all.length < 5) throw new RpcFailure(this.malformed, `${this.what} has no message (${all.length} bytes of DATA)`);
    const length = all.readUInt32BE(1);
    if (all.length !== 5 + length) throw new RpcFailure(this.malformed, `${this.what} has ${all.length - 5} bytes of DATA for a message of ${length} bytes (a unary call carries exactly one message)`);
    const body = all.subarray(5);
    if (all[0] === 0) return body;
    if (all[0] !== 1) throw new RpcFailure(this.malformed, `${this.what} has compressed flag ${all[0]} (0 or 1 expected)`);
    if (encoding === undefined || encoding === '' || encoding === 'identity') {
      throw new RpcFailure(this.malformed, `${this.what} has its compressed flag set but ${encoding ? `grpc-encoding '${encoding}'` : 'no grpc-encoding'} says how`);
    }
    const inflater = encoding === 'gzip' ? gunzip : encoding === 'deflate' ? inflate : undefined;
    if (!inflater) throw new RpcFailure(status.UNIMPLEMENTED, `${this.what} is compressed with '${encoding}'; this side accepts identity, gzip and deflate`);
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

/**
 * Opens a server-streaming answer (a health Watch): headers now, a framed message per write, OK in trailers when it
 * ends. A stream that closes before its end was the client going away: the caller forgets the call either way.
 */
export function streamingCall(stream: ServerHttp2Stream): WatchCall {
  stream.respond({ ':status': 200, 'content-type': GRPC_CONTENT_TYPE }, { waitForTrailers: true });
  stream.once('wantTrailers', () => stream.sendTrailers(statusHeaders(status.OK, '')));
  return {
    get cancelled() {
      return stream.destroyed || stream.closed;
    },
    write: (message) => stream.write(frame(message as Buffer)),
    end: () => stream.end(),
    once: (_event, listener) => stream.once('close', listener),
  };
}

/** Answers a unary call with its response message and OK in trailers. */
export function respondMessage(stream: ServerHttp2Stream, response: Buffer): void {
  if (stream.destroyed || stream.closed || stream.headersSent) return;
  stream.respond({ ':status': 200, 'content-type': GRPC_CONTENT_TYPE }, { waitForTrailers: true });
  stream.once('wantTrailers', () => stream.sendTrailers(statusHeaders(status.OK, '')));
  stream.end(frame(response));
}

/**
 * Answers "trailers-only": the status (and any trailer metadata, e.g. the model's `pyml-tensor`) in the headers.
 * A stream whose headers already went (a health Watch) is reset instead.
 */
export function respondFailure(stream: ServerHttp2Stream, failure: RpcFailure): void {
  if (stream.destroyed || stream.closed) return;
  if (stream.headersSent) {
    stream.close(http2.constants.NGHTTP2_INTERNAL_ERROR);
    return;
  }
  const accept = failure.code === status.UNIMPLEMENTED ? { 'grpc-accept-encoding': GRPC_ACCEPT_ENCODING } : {};
  stream.respond({ ':status': 200, 'content-type': GRPC_CONTENT_TYPE, ...accept, ...statusHeaders(failure.code, failure.message, failure.metadata) }, { endStream: true });
}

export interface ReceiveOptions {
  maxMessageBytes: number;
  /** Names the request in failures ("request to /pkg.Service/Method"). */
  what: string;
  /** How long the request may take to arrive, in ms from now. */
  receiveMs: number;
  /** The whole request message, uncompressed. */
  onMessage(request: Buffer): void;
  /** The request is refused (too large, malformed, not in time): answer it with this. */
  onFailure(failure: RpcFailure): void;
}

/**
 * Receives a unary request's one message on a server stream: size checked from its prefix before the rest arrives,
 * decompressed off the event loop with the same bound, and all of it within `receiveMs` (a request stream that
 * never ends, or trickles, is refused DEADLINE_EXCEEDED then, and its bytes are dropped).
 */
export function receiveUnary(stream: ServerHttp2Stream, headers: IncomingHttpHeaders, options: ReceiveOptions): void {
  const body = new UnaryMessage(options.maxMessageBytes, options.what, status.INVALID_ARGUMENT);
  let receiving = true;
  const receiveTimer = setTimeout(() => {
    if (!receiving) return;
    stopReceiving();
    options.onFailure(new RpcFailure(status.DEADLINE_EXCEEDED, `Deadline exceeded while receiving the request (within ${Math.round(options.receiveMs)} ms)`));
  }, Math.max(0, Math.min(options.receiveMs, 2 ** 31 - 1)));
  const stopReceiving = () => {
    receiving = false;
    clearTimeout(receiveTimer);
  };
  stream.once('close', stopReceiving);
  stream.on('data', (chunk: Buffer) => {
    if (!receiving) return;
    try {
      body.push(chunk);
    } catch (error) {
      stopReceiving();
      options.onFailure(asRpcFailure(error));
    }
  });
  stream.on('end', () => {
    if (!receiving) return;
    let message: Buffer | Promise<Buffer>;
    try {
      message = body.message(headers['grpc-encoding'] as string | undefined);
    } catch (error) {
      stopReceiving();
      return options.onFailure(asRpcFailure(error));
    }
    if (Buffer.isBuffer(message)) {
      stopReceiving();
      return options.onMessage(message);
    }
    message.then((request) => {
      if (!receiving) return;
      stopReceiving();
      options.onMessage(request);
    }, (error: unknown) => {
      if (!receiving) return;
      stopReceiving();
      options.onFailure(asRpcFailure(error));
    });
  });
}

/** Flow-control windows: a multi-MiB tensor should not wait on a WINDOW_UPDATE per 64 KiB. */
const STREAM_WINDOW = 4 << 20;
const SESSION_WINDOW = 32 << 20;

/**
 * An HTTP/2 server for gRPC calls of up to `maxMessageBytes`, as both of pyml's gRPC servers (the image's and the
 * service's front) run one: large flow-control windows, 64 KiB of headers, and nghttp2's memory guard (counted in
 * MB) set so messages up to the limit, several at once, do not trip it.
 */
export function createGrpcServer(maxMessageBytes: number): Http2Server {
  return http2.createServer({
    settings: { initialWindowSize: STREAM_WINDOW, maxHeaderListSize: 64 << 10 },
    maxSessionMemory: Math.max(64, Math.ceil((maxMessageBytes * 4) / 1e6)),
  });
}

/**
 * Keeps a new session in `sessions` until it closes (a drain closes them all). A peer's protocol error ends its
 * connection, never the server; a session that arrives while the server drains is told to go away at once.
 */
export function trackSession(sessions: Set<ServerHttp2Session>, session: ServerHttp2Session, draining: boolean): void {
  sessions.add(session);
  session.on('close', () => sessions.delete(session));
  session.on('error', () => session.destroy());
  session.setLocalWindowSize(SESSION_WINDOW);
  if (draining) session.close();
}

/** Whether a new stream is a gRPC call (POST, a gRPC content type); when it is not, answers 405 or 415 and says no. */
export function isGrpcCall(stream: ServerHttp2Stream, headers: IncomingHttpHeaders): boolean {
  // A stream's errors are its peer's business: they must never reach the server as an unhandled 'error'.
  stream.on('error', () => {});
  if (headers[':method'] !== 'POST') {
    stream.respond({ ':status': 405, allow: 'POST' }, { endStream: true });
    return false;
  }
  if (!String(headers['content-type'] ?? '').startsWith(GRPC_CONTENT_TYPE)) {
    stream.respond({ ':status': 415 }, { endStream: true });
    return false;
  }
  return true;
}
