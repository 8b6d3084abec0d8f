import http2, { type OutgoingHttpHeaders } from 'node:http2';
import net from 'node:net';
import { type Metadata, status } from '@pyml/runtime/protocol';
import { GRPC_CONTENT_TYPE, formatTimeout } from '@pyml/runtime/protocol';
import { RpcFailure } from './rpc-failure.ts';
import { UnaryCall, type CallDone, type CallHandle, type CallSession } from './unary-call.ts';

export type { CallDone, CallHandle } from './unary-call.ts';

const { HTTP2_HEADER_METHOD, HTTP2_HEADER_PATH, HTTP2_HEADER_CONTENT_TYPE, HTTP2_HEADER_TE, NGHTTP2_NO_ERROR } = http2.constants;

/**
 * Flow-control windows: the default 64 KiB would make a multi-MB tensor wait for a WINDOW_UPDATE round trip every
 * 64 KiB. A local peer we started is trusted with this much buffered data.
 */
const STREAM_WINDOW = 32 * 1024 * 1024;
const SESSION_WINDOW = 128 * 1024 * 1024;
export interface ModelConnectionOptions {
  /** Largest response accepted, in bytes; a larger one fails the call with RESOURCE_EXHAUSTED. */
  maxMessageBytes: number;
}

/**
 * One HTTP/2 connection to a model's Unix socket, speaking gRPC unary calls on raw message bytes with node:http2
 * (cheaper per call than a grpc-js channel, see grpc-wire.ts): the path to models started elsewhere (`--model
 * NAME=unix://`) and to images older than the framed protocol (frame-connection.ts), and the external probe. Connects on the first
 * call; when the connection dies, its calls in flight fail at once with UNAVAILABLE and the next call connects
 * again. Holds the process open only while calls are in flight.
 */
export class ModelConnection {
  private session?: CallSession;
  private closed = false;

  constructor(readonly socketPath: string, private readonly options: ModelConnectionOptions) {}

  /** Sends one unary call; `done` is called exactly once, with the response's bytes or the call's failure. */
  call(path: string, request: Buffer, deadline: Date, metadata: Metadata, done: CallDone): CallHandle {
    if (this.closed) {
      done(new RpcFailure(status.UNAVAILABLE, `connection to ${this.socketPath} is closed`));
      return { cancel() {} };
    }
    const remainingMs = deadline.getTime() - Date.now();
    if (remainingMs <= 0) {
      done(new RpcFailure(status.DEADLINE_EXCEEDED, 'Deadline exceeded'));
      return { cancel() {} };
    }
    const session = this.open();
    const call = new UnaryCall(session, { maxMessageBytes: this.options.maxMessageBytes, describe: () => this.describe(session) }, done);
    if (!call.send(requestHeaders(path, metadata, remainingMs), request, remainingMs)) this.forget(session);
    return call;
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
  private open(): CallSession {
    const current = this.session?.http2;
    // A session destroyed or closing whose event has not been emitted yet is no longer usable either.
    if (current && !current.destroyed && !current.closed) return this.session!;
    const http2Session = http2.connect('http://localhost', {
      createConnection: () => net.connect(this.socketPath),
      settings: { initialWindowSize: STREAM_WINDOW, enablePush: false },
      // Large tensors in flight on several streams at once are buffered by the session: don't refuse streams for it.
      maxSessionMemory: 1024,
    });
    const session: CallSession = { http2: http2Session, calls: new Set(), connected: false };
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

  private forget(session: CallSession): void {
    if (this.session === session) this.session = undefined;
  }

  private failAll(session: CallSession): void {
    if (session.calls.size === 0) return;
    const failure = new RpcFailure(status.UNAVAILABLE, `${this.describe(session)}: ${session.reason}`);
    for (const pending of [...session.calls]) pending.fail(failure);
  }

  private describe(session: CallSession): string {
    return session.connected ? `connection to ${this.socketPath} broke` : `cannot connect to ${this.socketPath}`;
  }
}

/** The call's request headers: the caller's metadata, gRPC's own, and its deadline as `grpc-timeout`. */
function requestHeaders(path: string, metadata: Metadata, remainingMs: number): OutgoingHttpHeaders {
  // toHttp2Headers() returns a new object: the call's own headers go into it rather than into a copy.
  const headers: OutgoingHttpHeaders = metadata.toHttp2Headers();
  headers[HTTP2_HEADER_METHOD] = 'POST';
  headers[HTTP2_HEADER_PATH] = path;
  headers[HTTP2_HEADER_CONTENT_TYPE] = GRPC_CONTENT_TYPE;
  headers[HTTP2_HEADER_TE] = 'trailers';
  if (Number.isFinite(remainingMs)) headers['grpc-timeout'] = formatTimeout(remainingMs);
  return headers;
}
