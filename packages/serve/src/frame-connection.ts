import net, { type Socket } from 'node:net';
import { status } from '@pyml/runtime/protocol';
import {
  type CallFrame, FRAME_HEADER_BYTES, FrameReader, FrameType, RESULT_JSON, RESULT_PROTO, RpcFailure,
  oversizeFailure, readFailureFrame, writeCallFrame, writeFrame,
} from '@pyml/runtime/protocol';
import type { CallHandle } from './unary-call.ts';

/** A call's answer: the gRPC response message, or (REST_INFER) the JSON text of a small answer. */
export interface FrameResult {
  kind: typeof RESULT_PROTO | typeof RESULT_JSON;
  body: Buffer;
}

export type FrameDone = (error: RpcFailure | undefined, result?: FrameResult) => void;

export interface FrameConnectionOptions {
  /** Largest response accepted, in bytes; a larger one fails the call with RESOURCE_EXHAUSTED (its bytes skipped). */
  maxMessageBytes: number;
}

/** One connection to the model and why it died, once it did. */
interface Link {
  socket: Socket;
  connected: boolean;
  reason?: string;
}

interface Pending {
  done: FrameDone;
  link: Link;
  timer?: NodeJS.Timeout;
}

/** Call ids wrap below this (u32 on the wire); an id is free again once its call settled. */
const MAX_ID = 0xffffffff;
/** Largest timer Node keeps (a longer one fires at once). */
const MAX_TIMER_MS = 2 ** 31 - 1;

/**
 * `pyml serve`'s end of the framed protocol (@pyml/runtime's oip/frames.ts) to one model process: one Unix-socket
 * connection carrying every call at once, each a CALL frame out and a RESULT or FAILURE frame back, matched by id.
 * Connects on the first call; when the connection dies, its calls in flight fail at once with UNAVAILABLE and the
 * next call connects again. A call's deadline or its caller going away ends it here and sends CANCEL. Holds the
 * process open only while calls are in flight.
 */
export class FrameConnection {
  private link?: Link;
  private readonly calls = new Map<number, Pending>();
  private nextId = 1;
  private closed = false;

  constructor(readonly socketPath: string, private readonly options: FrameConnectionOptions) {}

  /** Sends one call; `done` is called exactly once. */
  call(call: CallFrame, deadline: Date, done: FrameDone): CallHandle {
    if (this.closed) {
      done(new RpcFailure(status.UNAVAILABLE, `connection to ${this.socketPath} is closed`));
      return { cancel() {} };
    }
    const remainingMs = deadline.getTime() - Date.now();
    if (remainingMs <= 0) {
      done(new RpcFailure(status.DEADLINE_EXCEEDED, 'Deadline exceeded'));
      return { cancel() {} };
    }
    const link = this.open();
    const id = this.takeId();
    try {
      // Checked (name, method) before anything is written: a refused call leaves the connection as it was.
      writeCallFrame(link.socket, id, { ...call, timeoutMs: remainingMs });
    } catch (error) {
      done(error as RpcFailure);
      return { cancel() {} };
    }
    const pending: Pending = { done, link };
    if (remainingMs < MAX_TIMER_MS) pending.timer = setTimeout(() => this.cancel(id, new RpcFailure(status.DEADLINE_EXCEEDED, 'Deadline exceeded')), remainingMs);
    if (this.calls.size === 0) link.socket.ref();
    this.calls.set(id, pending);
    return { cancel: (code, details) => this.cancel(id, new RpcFailure(code, details)) };
  }

  /** Ends the connection; calls in flight fail with UNAVAILABLE, later calls at once. */
  close(): void {
    this.closed = true;
    const link = this.link;
    this.link = undefined;
    if (!link) return;
    link.reason ??= 'the connection was closed';
    this.failAll(link);
    link.socket.destroy();
  }

  private takeId(): number {
    // Skip ids still in flight after a wrap (a call can outlive four billion others only in theory).
    while (this.calls.has(this.nextId)) this.nextId = this.nextId >= MAX_ID ? 1 : this.nextId + 1;
    const id = this.nextId;
    this.nextId = id >= MAX_ID ? 1 : id + 1;
    return id;
  }

  /** Ends a call here and tells the model to drop it. */
  private cancel(id: number, failure: RpcFailure): void {
    const pending = this.calls.get(id);
    if (!pending) return;
    this.settle(id, failure);
    if (!pending.link.socket.destroyed) writeFrame(pending.link.socket, FrameType.CANCEL, id, []);
  }

  private settle(id: number, error: RpcFailure | undefined, result?: FrameResult): void {
    const pending = this.calls.get(id);
    if (!pending) return;
    this.calls.delete(id);
    clearTimeout(pending.timer);
    if (this.calls.size === 0) pending.link.socket.unref();
    pending.done(error, result);
  }

  /** The current connection, or a new one when there is none. */
  private open(): Link {
    if (this.link && !this.link.socket.destroyed) return this.link;
    const socket = net.connect(this.socketPath);
    const link: Link = { socket, connected: false };
    this.link = link;
    socket.setNoDelay(true);
    socket.unref();
    const reader = new FrameReader(this.options.maxMessageBytes + 1, {
      frame: (type, id, body) => {
        if (type === FrameType.RESULT) {
          const kind = body[0];
          if (body.length < 1 || (kind !== RESULT_PROTO && kind !== RESULT_JSON)) return this.settle(id, new RpcFailure(status.INTERNAL, `the model sent a result of unknown kind ${kind}`));
          return this.settle(id, undefined, { kind, body: body.subarray(1) });
        }
        if (type === FrameType.FAILURE) return this.settle(id, readFailureFrame(body));
        // Nothing else comes from a model: the connection is not speaking this protocol.
        link.reason = `the model sent a frame of unknown type ${type}`;
        socket.destroy();
      },
      oversize: (_type, id, bodyBytes) => this.settle(id, oversizeFailure('the model\'s response', bodyBytes - 1, this.options.maxMessageBytes)),
    });
    socket.on('connect', () => { link.connected = true; });
    socket.on('data', (chunk: Buffer) => reader.push(chunk));
    socket.on('error', (error) => { link.reason ??= error.message; });
    socket.on('close', () => {
      if (this.link === link) this.link = undefined;
      link.reason ??= 'the connection closed';
      this.failAll(link);
    });
    return link;
  }

  private failAll(link: Link): void {
    if (this.calls.size === 0) return;
    const failure = new RpcFailure(status.UNAVAILABLE, `${link.connected ? `connection to ${this.socketPath} broke` : `cannot connect to ${this.socketPath}`}: ${link.reason}`);
    for (const [id, pending] of [...this.calls]) if (pending.link === link) this.settle(id, failure);
  }
}
