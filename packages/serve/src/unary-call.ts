import http2, { type ClientHttp2Session, type ClientHttp2Stream, type IncomingHttpHeaders, type OutgoingHttpHeaders } from 'node:http2';
import { status } from '@pyml/runtime/protocol';
import { GRPC_CONTENT_TYPE, UnaryMessage, frame, statusOf } from '@pyml/runtime/protocol';
import { RpcFailure, asRpcFailure } from './rpc-failure.ts';

const {
  HTTP2_HEADER_STATUS, HTTP2_HEADER_CONTENT_TYPE,
  NGHTTP2_CANCEL, NGHTTP2_NO_ERROR, NGHTTP2_REFUSED_STREAM, NGHTTP2_ENHANCE_YOUR_CALM, NGHTTP2_INADEQUATE_SECURITY,
} = http2.constants;

/** Largest timer Node keeps (a longer one fires at once). */
const MAX_TIMER_MS = 2 ** 31 - 1;
/** Requests up to this size are framed into one buffer (one DATA write); larger ones are written without a copy. */
const COPY_BELOW = 64 * 1024;

export type CallDone = (error: RpcFailure | undefined, response?: Buffer) => void;

export interface CallHandle {
  /** Ends the call with this status (reported to its `done`) and resets its stream. */
  cancel(code: status, details: string): void;
}

/** One call in flight: what fails it when its session dies. */
export interface PendingCall {
  fail(error: RpcFailure): void;
}

/** One HTTP/2 connection to a model and the calls on it. */
export interface CallSession {
  http2: ClientHttp2Session;
  calls: Set<PendingCall>;
  /** Why the connection died, once it did (an error from the socket, or the peer's GOAWAY code). */
  reason?: string;
  connected: boolean;
}

export interface UnaryCallOptions {
  /** Largest response accepted, in bytes; a larger one fails the call with RESOURCE_EXHAUSTED. */
  maxMessageBytes: number;
  /** How the connection is named in a failure ("connection to … broke", "cannot connect to …"). */
  describe: () => string;
}

/**
 * One gRPC unary call on a model's HTTP/2 session, raw message bytes each way: sends the request, reads the
 * response and its status, and settles `done` exactly once (with the deadline, a cancel, or the session's death).
 * While in flight it is in its session's `calls`, and the session is ref'ed.
 */
export class UnaryCall implements CallHandle, PendingCall {
  private settled = false;
  private timer?: NodeJS.Timeout;
  private stream?: ClientHttp2Stream;
  private readonly body: UnaryMessage;
  private responseHeaders?: IncomingHttpHeaders;
  private trailers?: IncomingHttpHeaders;
  private streamError?: Error;
  private bodyBytes = 0;

  constructor(private readonly session: CallSession, private readonly options: UnaryCallOptions, private readonly done: CallDone) {
    this.body = new UnaryMessage(options.maxMessageBytes, 'the model\'s response');
  }

  /** Starts the call. False when the session turned out to be dead (the call has then failed with UNAVAILABLE). */
  send(headers: OutgoingHttpHeaders, request: Buffer, remainingMs: number): boolean {
    if (this.session.calls.size === 0) this.session.http2.ref();
    this.session.calls.add(this);
    if (remainingMs < MAX_TIMER_MS) this.timer = setTimeout(() => this.fail(new RpcFailure(status.DEADLINE_EXCEEDED, 'Deadline exceeded')), remainingMs);
    try {
      this.stream = this.session.http2.request(headers, { endStream: false });
    } catch (error) {
      // The session died between open() and here (request() throws on a destroyed or closing session).
      this.settle(new RpcFailure(status.UNAVAILABLE, `${this.options.describe()}: ${(error as Error).message}`));
      return false;
    }
    this.writeRequest(this.stream, request);
    this.listen(this.stream);
    return true;
  }

  cancel(code: status, details: string): void {
    this.fail(new RpcFailure(code, details));
  }

  /** Ends the call here and tells the model to stop working on it. */
  fail(error: RpcFailure): void {
    this.settle(error);
    if (this.stream && !this.stream.closed) this.stream.close(NGHTTP2_CANCEL);
  }

  private writeRequest(stream: ClientHttp2Stream, request: Buffer): void {
    if (request.length < COPY_BELOW) {
      stream.end(frame(request));
      return;
    }
    const prefix = Buffer.allocUnsafe(5);
    prefix[0] = 0;
    prefix.writeUInt32BE(request.length, 1);
    stream.write(prefix);
    stream.end(request);
  }

  private listen(stream: ClientHttp2Stream): void {
    stream.on('response', (headers) => this.onResponse(headers));
    stream.on('data', (chunk: Buffer) => this.onData(chunk));
    stream.on('trailers', (headers) => {
      this.trailers = headers;
    });
    // The status is read at the end, once every DATA chunk before the trailers was delivered.
    stream.on('end', () => {
      if (this.trailers) this.finish(this.trailers, this.bodyBytes > 0);
    });
    stream.on('error', (error) => {
      this.streamError = error;
    });
    stream.on('close', () => this.onClose(stream));
  }

  private onResponse(headers: IncomingHttpHeaders): void {
    this.responseHeaders = headers;
    const httpStatus = Number(headers[HTTP2_HEADER_STATUS]);
    if (httpStatus !== 200) return this.fail(new RpcFailure(codeForHttpStatus(httpStatus), `the model answered with HTTP status ${httpStatus}`));
    if (headers['grpc-status'] !== undefined) return this.finish(headers, false); // trailers-only
    const type = headers[HTTP2_HEADER_CONTENT_TYPE];
    if (typeof type !== 'string' || !type.startsWith(GRPC_CONTENT_TYPE)) {
      this.fail(new RpcFailure(status.INTERNAL, `the model answered with content-type '${type ?? ''}', not ${GRPC_CONTENT_TYPE}`));
    }
  }

  private onData(chunk: Buffer): void {
    if (this.settled) return;
    this.bodyBytes += chunk.length;
    try {
      this.body.push(chunk);
    } catch (error) {
      this.fail(error as RpcFailure);
    }
  }

  private onClose(stream: ClientHttp2Stream): void {
    if (this.settled) return;
    const session = this.session;
    if (session.http2.destroyed || session.reason !== undefined) {
      const why = session.reason ?? (this.streamError && rootCause(this.streamError).message);
      this.settle(new RpcFailure(status.UNAVAILABLE, `${this.options.describe()}${why ? `: ${why}` : ''}`));
      return;
    }
    this.settle(failureForReset(stream.rstCode, this.streamError));
  }

  /** The call's outcome from a status (in trailers, or trailers-only headers). */
  private finish(statusHeaders: IncomingHttpHeaders, withBody: boolean): void {
    const result = statusOf(statusHeaders);
    if (result === undefined) return this.settle(new RpcFailure(status.INTERNAL, 'the model\'s response ended without a gRPC status'));
    if (result.code !== status.OK) return this.settle(result as RpcFailure);
    if (!withBody) return this.settle(new RpcFailure(status.UNIMPLEMENTED, 'No message received'));
    try {
      const encoding = this.responseHeaders?.['grpc-encoding'];
      const message = this.body.message(typeof encoding === 'string' ? encoding : undefined);
      if (Buffer.isBuffer(message)) this.settle(undefined, message);
      else message.then((m) => this.settle(undefined, m), (error: unknown) => this.settle(asRpcFailure(error)));
    } catch (error) {
      this.settle(asRpcFailure(error));
    }
  }

  private settle(error: RpcFailure | undefined, response?: Buffer): void {
    if (this.settled) return;
    this.settled = true;
    clearTimeout(this.timer);
    this.session.calls.delete(this);
    if (this.session.calls.size === 0) this.session.http2.unref();
    this.done(error, response);
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
