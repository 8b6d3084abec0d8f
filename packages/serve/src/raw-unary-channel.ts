import { type ClientHttp2Session, type IncomingHttpHeaders, type OutgoingHttpHeaders, connect, constants } from 'node:http2';
import { connect as connectSocket } from 'node:net';
import { Metadata, status } from '@grpc/grpc-js';

/** How one unary call ended: a status, its trailers, and the response message when the status is OK. */
export interface UnaryOutcome {
  code: status;
  details: string;
  metadata?: Metadata;
  response?: Buffer;
}

/** A call in flight; `cancel` resets its stream (the outcome callback is not called afterwards). */
export interface UnaryCall {
  cancel(): void;
}

/** Headers that are HTTP/2 or gRPC protocol, never caller metadata. */
const RESERVED = new Set(['grpc-status', 'grpc-message', 'grpc-status-details-bin', 'content-type', 'grpc-encoding', 'grpc-accept-encoding', 'te', 'user-agent', 'date']);

function metadataOf(headers: IncomingHttpHeaders): Metadata {
  const metadata = new Metadata();
  for (const [key, value] of Object.entries(headers)) {
    if (key.startsWith(':') || RESERVED.has(key) || value === undefined) continue;
    for (const v of Array.isArray(value) ? value : [value]) {
      if (key.endsWith('-bin')) metadata.add(key, Buffer.from(v, 'base64'));
      else metadata.add(key, v);
    }
  }
  return metadata;
}

/** grpc-message is percent-encoded (gRPC over HTTP/2 spec); a malformed one is shown as it came. */
function decodeMessage(text: string | string[] | undefined): string {
  const s = Array.isArray(text) ? text.join(',') : text ?? '';
  try {
    return decodeURIComponent(s);
  } catch {
    return s;
  }
}

/**
 * Unary gRPC calls, message bytes in and out, over one plain HTTP/2 connection to a local Unix socket (reopened on
 * demand after it drops). The router's hop to its model needs none of the grpc-js client's machinery (name
 * resolution, load balancing, retries, per-call filter stacks), which costs more per call than the hop itself.
 * Speaks the gRPC-over-HTTP/2 wire format: length-prefixed messages, `grpc-timeout`, status in trailers (or in a
 * trailers-only response), no compression.
 */
export class RawUnaryChannel {
  private session?: ClientHttp2Session;
  private closed = false;

  constructor(private readonly socket: string, private readonly maxMessageBytes: number) {}

  private connection(): ClientHttp2Session {
    const current = this.session;
    if (current && !current.closed && !current.destroyed) return current;
    const session = connect('http://localhost', { createConnection: () => connectSocket(this.socket) });
    // Failures reach each call through its stream's close; the session's own error only says the same thing.
    session.on('error', () => {});
    session.once('close', () => { if (this.session === session) this.session = undefined; });
    this.session = session;
    return session;
  }

  /** Starts a call; `done` is called exactly once, unless the call is cancelled first. */
  call(path: string, request: Buffer, deadline: Date, metadata: Metadata | undefined, done: (outcome: UnaryOutcome) => void): UnaryCall {
    const timeoutMs = deadline.getTime() - Date.now();
    let finished = false;
    const finish = (outcome: UnaryOutcome) => {
      if (finished) return;
      finished = true;
      clearTimeout(timer);
      done(outcome);
    };
    let timer: NodeJS.Timeout | undefined;
    if (this.closed) {
      queueMicrotask(() => finish({ code: status.UNAVAILABLE, details: 'channel closed' }));
      return { cancel: () => { finished = true; } };
    }
    if (timeoutMs <= 0) {
      queueMicrotask(() => finish({ code: status.DEADLINE_EXCEEDED, details: 'Deadline exceeded' }));
      return { cancel: () => { finished = true; } };
    }
    const headers: OutgoingHttpHeaders = {
      ':method': 'POST', ':path': path, 'content-type': 'application/grpc', te: 'trailers', 'grpc-timeout': `${Math.ceil(timeoutMs)}m`,
    };
    if (metadata) Object.assign(headers, metadata.toHttp2Headers());
    let stream;
    try {
      stream = this.connection().request(headers, { endStream: false });
    } catch (error) {
      queueMicrotask(() => finish({ code: status.UNAVAILABLE, details: `cannot open a stream to ${this.socket}: ${(error as Error).message}` }));
      return { cancel: () => { finished = true; } };
    }
    timer = setTimeout(() => {
      stream.close(constants.NGHTTP2_CANCEL);
      finish({ code: status.DEADLINE_EXCEEDED, details: 'Deadline exceeded' });
    }, timeoutMs);
    let head: IncomingHttpHeaders | undefined;
    let trailers: IncomingHttpHeaders | undefined;
    const chunks: Buffer[] = [];
    let size = 0;
    stream.on('response', (h) => { head = h; });
    stream.on('trailers', (t) => { trailers = t; });
    stream.on('data', (chunk: Buffer) => {
      size += chunk.length;
      if (size > this.maxMessageBytes + 5) {
        stream.close(constants.NGHTTP2_CANCEL);
        finish({ code: status.RESOURCE_EXHAUSTED, details: `Received message larger than max (${size - 5} vs. ${this.maxMessageBytes})` });
      } else chunks.push(chunk);
    });
    stream.on('error', () => {});
    stream.on('close', () => {
      if (finished) return;
      // A trailers-only response carries the status in its headers.
      const end = trailers ?? (head?.['grpc-status'] !== undefined ? head : undefined);
      if (!end) {
        const why = stream.rstCode && stream.rstCode !== constants.NGHTTP2_NO_ERROR ? `stream reset (RST_STREAM code ${stream.rstCode})` : 'Connection dropped';
        return finish({ code: status.UNAVAILABLE, details: why });
      }
      const code = Number(end['grpc-status']);
      const md = metadataOf(trailers && head ? { ...head, ...trailers } : end);
      if (!Number.isInteger(code)) return finish({ code: status.UNKNOWN, details: `bad grpc-status '${String(end['grpc-status'])}'`, metadata: md });
      if (code !== status.OK) return finish({ code, details: decodeMessage(end['grpc-message']), metadata: md });
      const body = chunks.length === 1 ? chunks[0] : Buffer.concat(chunks, size);
      if (body.length < 5 || body[0] !== 0 || body.readUInt32BE(1) !== body.length - 5) {
        return finish({ code: status.INTERNAL, details: body.length >= 5 && body[0] !== 0 ? 'compressed response, but no compression was offered' : `malformed response message (${body.length} bytes)` });
      }
      finish({ code: status.OK, details: '', metadata: md, response: body.subarray(5) });
    });
    const prefix = Buffer.allocUnsafe(5);
    prefix[0] = 0;
    prefix.writeUInt32BE(request.length, 1);
    stream.write(prefix);
    stream.end(request);
    return {
      cancel: () => {
        if (finished) return;
        finished = true;
        clearTimeout(timer);
        stream.close(constants.NGHTTP2_CANCEL);
      },
    };
  }

  close(): void {
    this.closed = true;
    this.session?.close();
    this.session?.destroy();
    this.session = undefined;
  }
}
