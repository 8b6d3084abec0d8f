import { Metadata, status } from '@pyml/runtime/protocol';
import { type BatchingOptions, FrameFailure, type ServedModel } from '@pyml/runtime/protocol';
import type { CallerGone } from './caller-gone.ts';
import { FrontBatcher } from './front-batcher.ts';
import { FrameConnection, type FrameResult } from './frame-connection.ts';
import { type CallHandle, ModelConnection } from './model-connection.ts';
import { methodPath, type InferenceMethod } from './raw-service.ts';
import { RpcFailure } from './rpc-failure.ts';

/** `idle`: not running, started by the first call that needs it (on-demand start). */
export type ModelState = 'idle' | 'starting' | 'ready' | 'unavailable' | 'failed' | 'stopped';

export interface EndpointOptions {
  /** Largest request/response forwarded, in bytes. */
  maxMessageBytes: number;
  /** Most calls in flight to this model; more fail fast with RESOURCE_EXHAUSTED. */
  maxConcurrency: number;
  /** Set when the service merges this model's ModelInfer calls itself (see front-batcher.ts). */
  batching?: { model: ServedModel; options: BatchingOptions; mergedDeadlineMs: number; onBatch?(rows: number): void };
}

/** The service forwards no caller metadata to its models; the connection only reads this. */
const NO_METADATA = new Metadata();

interface InFlight {
  call?: CallHandle;
  fail(error: RpcFailure): void;
}

/**
 * A model as the router sees it: a name, a state, and a connection to it that forwards message bytes untouched:
 * the framed protocol to its frame socket when its process serves one, else gRPC to its socket. Subclasses decide where the socket comes from (a supervised process, or an external endpoint).
 * When the model goes away, every call in flight fails at once with UNAVAILABLE instead of waiting for its deadline.
 */
export abstract class ModelEndpoint {
  private current: ModelState = 'starting';
  /** Why the model is not ready (init error, crash), kept until it is ready again. */
  error?: string;
  /** gRPC over HTTP/2 to the model's socket (external models, and images older than the framed protocol). */
  private connection?: ModelConnection;
  /** The framed protocol to the model's frame socket, when its process serves one: the hop every call takes then. */
  private frames?: FrameConnection;
  private readonly inFlight = new Set<InFlight>();
  /** Calls waiting for a start to finish, told of every state change. */
  private readonly waiters = new Set<() => void>();
  /** Whoever follows this model's state (health watches), told of every change. */
  private readonly followers = new Set<() => void>();
  /** When the last call ended (or the model became ready): what an idle timeout counts from. */
  protected lastCallAt = Date.now();
  readonly batcher?: FrontBatcher;
  /** Merged calls in flight or waiting: their callers are counted by the batcher, not again here. */
  private mergedCalls = 0;

  constructor(readonly name: string, protected readonly options: EndpointOptions) {
    const batching = options.batching;
    if (batching) this.batcher = new FrontBatcher(batching.model, batching.options, (request, deadline, merged, gone) => (merged ? this.callMerged(request, deadline) : this.call('ModelInfer', request, deadline, gone)), batching.mergedDeadlineMs, batching.onBatch);
  }

  abstract readonly source: string;
  /** Starts supervising; resolves once the first start settled (ready or not). */
  abstract start(): Promise<void>;
  abstract stop(graceMs: number): Promise<void>;

  get state(): ModelState {
    return this.current;
  }

  set state(next: ModelState) {
    this.current = next;
    for (const wake of [...this.waiters]) wake();
    for (const follower of this.followers) follower();
  }

  /** Calls `listener` after every state change; returns what stops it. */
  follow(listener: () => void): () => void {
    this.followers.add(listener);
    return () => this.followers.delete(listener);
  }

  get ready(): boolean {
    return this.state === 'ready' && (this.connection !== undefined || this.frames !== undefined);
  }

  /** Whether a REST body can go to the model as it came (framed protocol, no merging in the front). */
  get takesJson(): boolean {
    return this.frames !== undefined && !this.batcher;
  }

  /** What readiness reports say: running and connected, or idle (a call starts it and waits for it). */
  get servable(): boolean {
    return this.ready || this.state === 'idle';
  }

  /** Requests in flight or waiting for a start (each caller of a merged call counted once). */
  get activeCalls(): number {
    return this.inFlight.size + this.waiters.size - this.mergedCalls + (this.batcher?.pending ?? 0);
  }

  /** Starts an idle model because a call wants it; endpoints that cannot start on demand ignore it. */
  protected demand(): void {}

  /** Waits until the model is ready (starting it if idle), failing at the deadline or if the start fails. */
  private whenStarted(deadline: Date): Promise<void> {
    return new Promise((resolve, reject) => {
      const settle = (error?: RpcFailure) => {
        this.waiters.delete(check);
        clearTimeout(timer);
        if (error) reject(error);
        else resolve();
      };
      const check = () => {
        if (this.ready) settle();
        else if (this.state !== 'idle' && this.state !== 'starting') settle(this.unavailable());
      };
      const timer = setTimeout(() => settle(new RpcFailure(status.DEADLINE_EXCEEDED, `model '${this.name}' was still starting when the request's deadline passed`)), Math.max(0, deadline.getTime() - Date.now()));
      this.waiters.add(check);
      this.demand();
      check();
    });
  }

  /** Why a call cannot go to this model now. */
  unavailable(): RpcFailure {
    const why = this.state === 'failed' ? `failed to start: ${this.error}` : this.state === 'starting' ? 'is starting' : this.error ? `is unavailable: ${this.error}` : `is ${this.state}`;
    return new RpcFailure(status.UNAVAILABLE, `model '${this.name}' ${why}`);
  }

  /** Calls go to `frames` (the framed protocol) when the model serves it, else gRPC on `socket`. */
  protected connect(socket: string, frames?: string): void {
    this.handOver(socket, frames)();
  }

  /**
   * New calls go to a new process of this model (a hot swap); returns what closes the old connections, which the
   * caller does once the old process drained: the calls in flight on them finish there meanwhile.
   */
  protected handOver(socket: string, frames?: string): () => void {
    const old = [this.connection, this.frames];
    this.connection = frames ? undefined : new ModelConnection(socket, { maxMessageBytes: this.options.maxMessageBytes });
    this.frames = frames ? new FrameConnection(frames, { maxMessageBytes: this.options.maxMessageBytes }) : undefined;
    return () => { for (const connection of old) connection?.close(); };
  }

  /** The model went away: fail what is in flight now, and drop the connection. */
  protected disconnect(reason: string): void {
    const connection = this.connection;
    const frames = this.frames;
    this.connection = undefined;
    this.frames = undefined;
    const failure = new RpcFailure(status.UNAVAILABLE, `model '${this.name}' ${reason}`);
    for (const pending of [...this.inFlight]) pending.fail(failure);
    connection?.close();
    frames?.close();
  }

  /** ModelInfer, within the model's concurrency limit: merged with concurrent calls when the service batches. */
  infer(request: Buffer, deadline: Date, gone?: CallerGone): Promise<Buffer> {
    if (this.activeCalls >= this.options.maxConcurrency) {
      return Promise.reject(new RpcFailure(status.RESOURCE_EXHAUSTED, `model '${this.name}' has ${this.activeCalls} requests in flight, its limit (--max-concurrency ${this.options.maxConcurrency}); retry later`));
    }
    return this.batcher ? this.batcher.infer(request, deadline, gone) : this.call('ModelInfer', request, deadline, gone);
  }

  private callMerged(request: Buffer, deadline: Date): Promise<Buffer> {
    this.mergedCalls++;
    const done = () => { this.mergedCalls--; };
    const call = this.call('ModelInfer', request, deadline);
    call.then(done, done);
    return call;
  }

  /**
   * REST ModelInfer with the body as the client sent it (only when `takesJson`), within the concurrency limit: the
   * model parses it once and answers with its JSON text (a large answer as the protobuf response).
   */
  inferJson(body: Buffer, version: string, deadline: Date, gone?: CallerGone): Promise<FrameResult> {
    if (this.activeCalls >= this.options.maxConcurrency) {
      return Promise.reject(new RpcFailure(status.RESOURCE_EXHAUSTED, `model '${this.name}' has ${this.activeCalls} requests in flight, its limit (--max-concurrency ${this.options.maxConcurrency}); retry later`));
    }
    return this.forward(deadline, gone, (done) => {
      const frames = this.frames;
      if (!frames) return done(new RpcFailure(status.UNAVAILABLE, `model '${this.name}' no longer takes JSON requests`));
      return frames.call({ method: 'RestInfer', name: this.name, version, request: body }, deadline, done);
    });
  }

  /** Forwards one unary call's bytes to the model, with a deadline; called off if the caller goes away. */
  call(method: InferenceMethod, request: Buffer, deadline: Date, gone?: CallerGone): Promise<Buffer> {
    return this.forward<Buffer>(deadline, gone, (done) => {
      if (this.frames && (method === 'ModelInfer' || method === 'ModelMetadata' || method === 'ModelReady')) {
        return this.frames.call({ method, name: this.name, version: '', request }, deadline, (error, result) => done(error, result?.body));
      }
      return this.connection!.call(methodPath(method), request, deadline, NO_METADATA, done);
    });
  }

  /**
   * Runs one call on the model's connection (`send`), once the model is started: counted in flight, failed at once
   * when the model goes away or its caller does, its failure named after the model.
   */
  private forward<T>(deadline: Date, gone: CallerGone | undefined, send: (done: (error: RpcFailure | undefined, result?: T) => void) => CallHandle | void): Promise<T> {
    // A model that is idle or on its first start is waited for (and started); one that crashed fails fast.
    if (this.state === 'idle' || this.state === 'starting') return this.whenStarted(deadline).then(() => this.forward(deadline, gone, send));
    if (!this.ready) return Promise.reject(this.unavailable());
    return new Promise<T>((resolve, reject) => {
      let settled = false;
      const pending: InFlight = {
        fail: (error) => {
          if (settled) return;
          settled = true;
          this.inFlight.delete(pending);
          this.lastCallAt = Date.now();
          pending.call?.cancel(status.CANCELLED, 'Cancelled on client');
          reject(error);
        },
      };
      this.inFlight.add(pending);
      gone?.onGone(() => pending.fail(new RpcFailure(status.CANCELLED, 'the caller cancelled the call')));
      const handle = send((error, result) => {
        if (settled) return;
        settled = true;
        this.inFlight.delete(pending);
        this.lastCallAt = Date.now();
        if (!error) return resolve(result!);
        // The connection can drop before the supervisor hears of the exit: either way the message names the model.
        const details = error.code !== status.UNAVAILABLE ? error.message : this.state !== 'ready' ? this.unavailable().message : `model '${this.name}' is unavailable: ${error.message}`;
        reject(error instanceof FrameFailure ? new FrameFailure(error.code, details, error.metadata, error.httpStatus) : new RpcFailure(error.code, details, error.metadata));
      });
      if (handle) pending.call = handle;
    });
  }
}
