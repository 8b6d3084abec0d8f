import { type Http2Server, type IncomingHttpHeaders, type OutgoingHttpHeaders, type ServerHttp2Session, type ServerHttp2Stream, constants, createServer } from 'node:http2';
import { status } from '@grpc/grpc-js';

/** What a handler throws to answer with a status other than INTERNAL (RpcFailure, grpc-js-style service errors). */
export interface GrpcStatusError {
  code: number;
  details?: string;
  message?: string;
  metadata?: { toHttp2Headers(): OutgoingHttpHeaders };
}

export interface UnaryContext {
  /** The caller's deadline (grpc-timeout) as epoch milliseconds, when it sent one. */
  deadline?: number;
  headers: IncomingHttpHeaders;
}

/** A unary method over message bytes: returns the response message, or throws a GrpcStatusError. */
export type UnaryHandler = (request: Buffer, call: UnaryContext) => Buffer | Promise<Buffer>;

const TIMEOUT_UNITS: Record<string, number> = { H: 3_600_000, M: 60_000, S: 1000, m: 1, u: 0.001, n: 0.000_001 };

/** grpc-timeout (gRPC over HTTP/2: up to 8 digits and a unit) → milliseconds; undefined when absent or malformed. */
function parseTimeout(value: string | string[] | undefined): number | undefined {
  const m = typeof value === 'string' ? /^(\d{1,8})([HMSmun])$/.exec(value) : null;
  return m ? Number(m[1]) * TIMEOUT_UNITS[m[2]] : undefined;
}

/**
 * grpc-message is percent-encoded outside printable ASCII (and '%' itself); spaces at either end too, because
 * HTTP/2 drops a header value that starts or ends with whitespace (and the client would see no message at all).
 */
function encodeMessage(text: string): string {
  return text.replace(/[^\x20-\x24\x26-\x7e]/gu, (c) => encodeURIComponent(c)).replace(/^ +| +$/g, (s) => '%20'.repeat(s.length));
}

function isStatusError(error: unknown): error is GrpcStatusError {
  return typeof error === 'object' && error !== null && typeof (error as GrpcStatusError).code === 'number';
}

/**
 * A unary-only gRPC server on Node's own HTTP/2, message bytes in and out. The V2 servers (the image's and `pyml
 * serve`'s) decode and encode messages themselves, so grpc-js's server machinery (interceptor chains, per-call
 * stream wrappers, channelz) was pure per-call cost. Speaks the gRPC-over-HTTP/2 wire format: one length-prefixed
 * message each way, `grpc-timeout` deadlines, status and trailers (trailers-only on errors), identity encoding
 * only (a compressed request gets UNIMPLEMENTED with `grpc-accept-encoding: identity`, as the spec says).
 */
export class RawGrpcServer {
  private readonly servers: Http2Server[] = [];
  private readonly sessions = new Set<ServerHttp2Session>();
  private readonly handlers = new Map<string, UnaryHandler>();

  constructor(private readonly maxMessageBytes: number) {}

  /** Serves `/<service>/<method>` with `handler`. */
  handle(path: string, handler: UnaryHandler): this {
    this.handlers.set(path, handler);
    return this;
  }

  /** Listens on `unix:PATH` or `HOST:PORT` (port 0 picks one); resolves with the port (0 for a Unix socket). */
  listen(address: string): Promise<number> {
    const server = createServer();
    server.on('session', (session) => {
      this.sessions.add(session);
      session.on('error', () => {});
      session.once('close', () => this.sessions.delete(session));
    });
    server.on('stream', (stream, headers) => this.onStream(stream, headers));
    this.servers.push(server);
    return new Promise((resolve, reject) => {
      server.once('error', reject);
      const bound = () => {
        server.off('error', reject);
        const a = server.address();
        resolve(typeof a === 'object' && a ? a.port : 0);
      };
      if (address.startsWith('unix:')) server.listen(address.slice('unix:'.length), bound);
      else {
        const m = /^(.*):(\d+)$/.exec(address);
        if (!m) return reject(new Error(`not a HOST:PORT or unix:PATH address: '${address}'`));
        server.listen(Number(m[2]), m[1].replace(/^\[(.*)\]$/, '$1'), bound);
      }
    });
  }

  /** No new connections or calls; resolves once calls in flight are answered and connections closed. */
  tryShutdown(): Promise<void> {
    const closed = this.servers.map((s) => new Promise<void>((resolve) => s.close(() => resolve())));
    for (const session of this.sessions) session.close();
    return Promise.all(closed).then(() => {});
  }

  /** Cuts every connection now. */
  forceShutdown(): void {
    for (const s of this.servers) s.close();
    for (const session of this.sessions) session.destroy();
  }

  private onStream(stream: ServerHttp2Stream, headers: IncomingHttpHeaders): void {
    stream.on('error', () => {});
    const handler = this.handlers.get(headers[':path'] ?? '');
    if (!handler) return this.fail(stream, { code: status.UNIMPLEMENTED, details: `the server does not implement the method ${headers[':path']}` });
    const encoding = headers['grpc-encoding'];
    if (encoding !== undefined && encoding !== 'identity') {
      return this.fail(stream, { code: status.UNIMPLEMENTED, details: `grpc-encoding '${String(encoding)}' is not supported; send identity` }, { 'grpc-accept-encoding': 'identity' });
    }
    const timeoutMs = parseTimeout(headers['grpc-timeout']);
    const deadline = timeoutMs === undefined ? undefined : Date.now() + timeoutMs;
    const timer = timeoutMs === undefined ? undefined : setTimeout(() => this.fail(stream, { code: status.DEADLINE_EXCEEDED, details: 'Deadline exceeded' }), timeoutMs);
    stream.once('close', () => clearTimeout(timer));
    const chunks: Buffer[] = [];
    let size = 0;
    stream.on('data', (chunk: Buffer) => {
      size += chunk.length;
      if (size > this.maxMessageBytes + 5) {
        this.fail(stream, { code: status.RESOURCE_EXHAUSTED, details: `Received message larger than max (${size - 5} vs. ${this.maxMessageBytes})` });
        stream.close(constants.NGHTTP2_NO_ERROR);
      } else if (!stream.headersSent) chunks.push(chunk);
    });
    stream.on('end', () => {
      if (stream.headersSent || stream.destroyed) return;
      const body = chunks.length === 1 ? chunks[0] : Buffer.concat(chunks, size);
      if (body.length < 5 || body.readUInt32BE(1) !== body.length - 5) {
        return this.fail(stream, { code: status.INTERNAL, details: `expected one length-prefixed message, got ${body.length} bytes` });
      }
      if (body[0] !== 0) return this.fail(stream, { code: status.INTERNAL, details: 'compressed message without a grpc-encoding' });
      let result: Buffer | Promise<Buffer>;
      try {
        result = handler(body.subarray(5), { deadline, headers });
      } catch (error) {
        return this.fail(stream, error);
      }
      if (Buffer.isBuffer(result)) this.reply(stream, result);
      else result.then((response) => this.reply(stream, response), (error: unknown) => this.fail(stream, error));
    });
  }

  private reply(stream: ServerHttp2Stream, response: Buffer): void {
    if (stream.headersSent || stream.destroyed || stream.closed) return;
    if (response.length > this.maxMessageBytes) {
      return this.fail(stream, { code: status.RESOURCE_EXHAUSTED, details: `Sent message larger than max (${response.length} vs. ${this.maxMessageBytes})` });
    }
    stream.respond({ ':status': 200, 'content-type': 'application/grpc' }, { waitForTrailers: true });
    stream.once('wantTrailers', () => stream.sendTrailers({ 'grpc-status': '0' }));
    const prefix = Buffer.allocUnsafe(5);
    prefix[0] = 0;
    prefix.writeUInt32BE(response.length, 1);
    stream.write(prefix);
    stream.end(response);
  }

  /** A trailers-only answer with the error's status (INTERNAL for anything that is not a GrpcStatusError). */
  private fail(stream: ServerHttp2Stream, error: unknown, extra: OutgoingHttpHeaders = {}): void {
    if (stream.headersSent || stream.destroyed || stream.closed) return;
    const e: GrpcStatusError = isStatusError(error) ? error : { code: status.INTERNAL, details: `internal error: ${error instanceof Error ? error.message : String(error)}` };
    stream.respond({
      ...(e.metadata ? e.metadata.toHttp2Headers() : {}),
      ...extra,
      ':status': 200, 'content-type': 'application/grpc',
      'grpc-status': String(e.code), 'grpc-message': encodeMessage(e.details ?? e.message ?? ''),
    }, { endStream: true });
  }
}
