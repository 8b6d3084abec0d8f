import http2, { type ClientHttp2Session, type ClientHttp2Stream, type IncomingHttpHeaders, type OutgoingHttpHeaders } from 'node:http2';
import net from 'node:net';
import { type Metadata, status } from '@grpc/grpc-js';
import { GRPC_CONTENT_TYPE, UnaryMessage, formatTimeout, frame, statusOf } from './grpc-wire.ts';
import { RpcFailure, asRpcFailure } from './rpc-failure.ts';

const {
  HTTP2_HEADER_METHOD, HTTP2_HEADER_PATH, HTTP2_HEADER_STATUS, HTTP2_HEADER_CONTENT_TYPE, HTTP2_HEADER_TE,
  NGHTTP2_CANCEL, NGHTTP2_NO_ERROR, NGHTTP2_REFUSED_STREAM, NGHTTP2_ENHANCE_YOUR_CALM, NGHTTP2_INADEQUATE_SECURITY,
} = http2.constants;

/**
 * Flow-control windows: the default 64 KiB would make a multi-MB tensor wait for a WINDOW_UPDATE round trip every
 * 64 KiB. A local peer we started is trusted with this much buffered data.
 */
const STREAM_WINDOW = 32 * 1024 * 1024;
const SESSION_WINDOW = 128 * 1024 * 1024;
/** Largest timer Node keeps (a longer one fires at once). */
const MAX_TIMER_MS = 2 ** 31 - 1;
/** Requests up to this size are framed into one buffer (one DATA write); larger ones are written without a copy. */
const COPY_BELOW = 64 * 1024;

export type CallDone = (error: RpcFailure | undefined, response?: Buffer) => void;

export interface CallHandle {
  /** Ends the call with this status (reported to its `done`) and resets its stream. */
  cancel(code: status, details: string): void;
}

export interface ModelConnectionOptions {
  /** Largest response accepted, in bytes; a larger one fails the call with RESOURCE_EXHAUSTED. */
  maxMessageBytes: number;
}

/** One call in flight: what fails it when its session dies. */
interface Pending {
  fail(error: RpcFailure): void;
}

/** One HTTP/2 connection and the calls on it. */
interface Session {
  http2: ClientHttp2Session;
  calls: Set<Pending>;
  /** Why the connection died, once it did (an error from the socket, or the peer's GOAWAY code). */
  reason?: string;
  connected: boolean;
}

/**
 * One HTTP/2 connection to a model's Unix socket, speaking gRPC unary calls on raw message bytes with node:http2
 * (the forwarding path's client: cheaper per call than a grpc-js channel, see grpc-wire.ts). Connects on the first
 * call; when the connection dies, its calls in flight fail at once with UNAVAILABLE and the next call connects
 * again. Holds the process open only while calls are in flight.
 */
export class ModelConnection {
  private session?: Session;
  private closed = false;

  constructor(readonly socketPath: string, private readonly options: ModelConnectionOptions) {}

  /** Sends one unary call; `done` is called exactly once, with the response's bytes or the call's failure. */
  call(path: string, request: Buffer, deadline: Date, metadata: Metadata, done: CallDone): CallHandle {
    if (this.closed) {
      done(new RpcFailure(status.UNAVAILABLE, `connection to ${this.socketPath} is closed`));
      return { cancel() {} };
    }
    const remaining = deadline.getTime() - Date.now();
    if (remaining <= 0) {
      done(new RpcFailure(status.DEADLINE_EXCEEDED, 'Deadline exceeded'));
      return { cancel() {} };
    }
    const session = this.open();
    // toHttp2Headers() returns a new object: the call's own headers go into it rather than into a copy.
    const headers: OutgoingHttpHeaders = metadata.toHttp2Headers();
    headers[HTTP2_HEADER_METHOD] = 'POST';
    headers[HTTP2_HEADER_PATH] = path;
    headers[HTTP2_HEADER_CONTENT_TYPE] = GRPC_CONTENT_TYPE;
    headers[HTTP2_HEADER_TE] = 'trailers';
    if (Number.isFinite(remaining)) headers['grpc-timeout'] = formatTimeout(remaining);

    let settled = false;
    let timer: NodeJS.Timeout | undefined;
    let stream: ClientHttp2Stream | undefined;
    const settle = (error: RpcFailure | undefined, response?: Buffer) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      session.calls.delete(pending);
      if (session.calls.size === 0) session.http2.unref();
      done(error, response);
    };
    /** Ends the call here and tells the model to stop working on it. */
    const abandon = (error: RpcFailure) => {
      settle(error);
      if (stream && !stream.closed) stream.close(NGHTTP2_CANCEL);
    };
    const pending: Pending = { fail: abandon };
    if (session.calls.size === 0) session.http2.ref();
    session.calls.add(pending);
    if (remaining < MAX_TIMER_MS) timer = setTimeout(() => abandon(new RpcFailure(status.DEADLINE_EXCEEDED, 'Deadline exceeded')), remaining);

    try {
      stream = session.http2.request(headers, { endStream: false });
    } catch (error) {
      // The session died between open() and here (request() throws on a destroyed or closing session).
      this.forget(session);
      settle(new RpcFailure(status.UNAVAILABLE, `${this.describe(session)}: ${(error as Error).message}`));
      return { cancel() {} };
    }
    const s = stream;
    if (request.length < COPY_BELOW) s.end(frame(request));
    else {
      const prefix = Buffer.allocUnsafe(5);
      prefix[0] = 0;
      prefix.writeUInt32BE(request.length, 1);
      s.write(prefix);
      s.end(request);
    }

    const body = new UnaryMessage(this.options.maxMessageBytes, 'the model\'s response');
    let responseHeaders: IncomingHttpHeaders | undefined;
    let trailers: IncomingHttpHeaders | undefined;
    let streamError: Error | undefined;

    /** The call's outcome from a status (in trailers, or trailers-only headers). */
    const finish = (statusHeaders: IncomingHttpHeaders, withBody: boolean) => {
      const result = statusOf(statusHeaders);
      if (result === undefined) return settle(new RpcFailure(status.INTERNAL, 'the model\'s response ended without a gRPC status'));
      if (result.code !== status.OK) return settle(result as RpcFailure);
      if (!withBody) return settle(new RpcFailure(status.UNIMPLEMENTED, 'No message received'));
      try {
        const encoding = responseHeaders?.['grpc-encoding'];
        const message = body.message(typeof encoding === 'string' ? encoding : undefined);
        if (Buffer.isBuffer(message)) settle(undefined, message);
        else message.then((m) => settle(undefined, m), (error: unknown) => settle(asRpcFailure(error)));
      } catch (error) {
        settle(asRpcFailure(error));
      }
    };

    s.on('response', (headers) => {
      responseHeaders = headers;
      const httpStatus = Number(headers[HTTP2_HEADER_STATUS]);
      if (httpStatus !== 200) return abandon(new RpcFailure(codeForHttpStatus(httpStatus), `the model answered with HTTP status ${httpStatus}`));
      if (headers['grpc-status'] !== undefined) return finish(headers, false); // trailers-only
      const type = headers[HTTP2_HEADER_CONTENT_TYPE];
      if (typeof type !== 'string' || !type.startsWith(GRPC_CONTENT_TYPE)) return abandon(new RpcFailure(status.INTERNAL, `the model answered with content-type '${type ?? ''}', not ${GRPC_CONTENT_TYPE}`));
    });
    let bodyBytes = 0;
    s.on('data', (chunk: Buffer) => {
      if (settled) return;
      bodyBytes += chunk.length;
      try {
        body.push(chunk);
      } catch (error) {
        abandon(error as RpcFailure);
      }
    });
    s.on('trailers', (headers) => {
      trailers = headers;
    });
    // The status is read at the end, once every DATA chunk before the trailers was delivered.
    s.on('end', () => {
      if (trailers) finish(trailers, bodyBytes > 0);
    });
    s.on('error', (error) => {
      streamError = error;
    });
    s.on('close', () => {
      if (settled) return;
      if (session.http2.destroyed || session.reason !== undefined) {
        const why = session.reason ?? (streamError && rootCause(streamError).message);
        return settle(new RpcFailure(status.UNAVAILABLE, `${this.describe(session)}${why ? `: ${why}` : ''}`));
      }
      settle(failureForReset(s.rstCode, streamError));
    });

    return { cancel: (code, details) => abandon(new RpcFailure(code, details)) };
  }

  /** Ends the connection; calls in flight fail with UNAVAILABLE, later calls at once. */
  close(): void {
    this.closed = true;
    const session = this.session;
    this.session = undefined;
    if (!session) return;
    session.reason ??= 'the connection was closed';
    this.failAll(session);
    session.http2.destroy();
  }

  /** The current session, or a new one when there is none or the last one is going away. */
  private open(): Session {
    const current = this.session?.http2;
    // A session destroyed or closing whose event has not been emitted yet is no longer usable either.
    if (current && !current.destroyed && !current.closed) return this.session!;
    const http2Session = http2.connect('http://localhost', {
      createConnection: () => net.connect(this.socketPath),
      settings: { initialWindowSize: STREAM_WINDOW, enablePush: false },
      // Large tensors in flight on several streams at once are buffered by the session: don't refuse streams for it.
      maxSessionMemory: 1024,
    });
    const session: Session = { http2: http2Session, calls: new Set(), connected: false };
    this.session = session;
    http2Session.unref();
    http2Session.once('connect', () => {
      session.connected = true;
      http2Session.setLocalWindowSize(SESSION_WINDOW);
    });
    http2Session.on('error', (error) => {
      session.reason ??= error.message;
      this.forget(session);
    });
    http2Session.on('goaway', (errorCode) => {
      // Streams the peer accepted may still finish (a draining server does that); new calls go to a new session.
      if (errorCode !== NGHTTP2_NO_ERROR) session.reason ??= `the model sent GOAWAY with code ${errorCode}`;
      this.forget(session);
    });
    http2Session.on('close', () => {
      this.forget(session);
      session.reason ??= 'the connection closed';
      this.failAll(session);
    });
    return session;
  }

  private forget(session: Session): void {
    if (this.session === session) this.session = undefined;
  }

  private failAll(session: Session): void {
    if (session.calls.size === 0) return;
    const failure = new RpcFailure(status.UNAVAILABLE, `${this.describe(session)}: ${session.reason}`);
    for (const pending of [...session.calls]) pending.fail(failure);
  }

  private describe(session: Session): string {
    return session.connected ? `connection to ${this.socketPath} broke` : `cannot connect to ${this.socketPath}`;
  }
}

/** The socket's error under node:http2's wrapping of it ("The pending stream has been canceled (caused by: …)"). */
function rootCause(error: Error): Error {
  return error.cause instanceof Error ? rootCause(error.cause) : error;
}

/** HTTP status → gRPC code, as gRPC's doc/http-grpc-status-mapping.md says for a response without grpc-status. */
function codeForHttpStatus(httpStatus: number): status {
  switch (httpStatus) {
    case 400: return status.INTERNAL;
    case 401: return status.UNAUTHENTICATED;
    case 403: return status.PERMISSION_DENIED;
    case 404: return status.UNIMPLEMENTED;
    case 429: case 502: case 503: case 504: return status.UNAVAILABLE;
    default: return status.UNKNOWN;
  }
}

/**
 * A stream the peer reset (or that ended with no status) on a live connection. The codes a peer resets with on
 * purpose map as grpc-js maps them; any other reset means the model went away under the call: UNAVAILABLE.
 */
function failureForReset(rstCode: number | undefined, error: Error | undefined): RpcFailure {
  switch (rstCode) {
    case NGHTTP2_REFUSED_STREAM: return new RpcFailure(status.UNAVAILABLE, 'the model refused the stream');
    case NGHTTP2_CANCEL: return new RpcFailure(status.CANCELLED, 'the model cancelled the call');
    case NGHTTP2_ENHANCE_YOUR_CALM: return new RpcFailure(status.RESOURCE_EXHAUSTED, 'the model reset the call: bandwidth exhausted or memory limit exceeded');
    case NGHTTP2_INADEQUATE_SECURITY: return new RpcFailure(status.PERMISSION_DENIED, 'the model reset the call: inadequate security');
    case NGHTTP2_NO_ERROR: case undefined: return new RpcFailure(status.UNAVAILABLE, `the model's response ended without a gRPC status${error ? ` (${error.message})` : ''}`);
    default: return new RpcFailure(status.UNAVAILABLE, `Received RST_STREAM with code ${rstCode}${error ? ` (${error.message})` : ''}`);
  }
}
