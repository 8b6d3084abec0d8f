import { type Metadata, status } from '@grpc/grpc-js';
import { methodPath, type InferenceMethod } from './raw-service.ts';
import { RawUnaryChannel, type UnaryCall } from './raw-unary-channel.ts';
import { RpcFailure } from './rpc-failure.ts';

export type ModelState = 'starting' | 'ready' | 'unavailable' | 'failed' | 'stopped';

export interface EndpointOptions {
  /** Largest request/response forwarded, in bytes. */
  maxMessageBytes: number;
  /** Most calls in flight to this model; more fail fast with RESOURCE_EXHAUSTED. */
  maxConcurrency: number;
}

interface InFlight {
  call?: UnaryCall;
  fail(error: RpcFailure): void;
}

/**
 * A model as the router sees it: a name, a state, and a gRPC connection to its Unix socket that forwards message
 * bytes untouched (a plain HTTP/2 channel: see RawUnaryChannel). Subclasses decide where the socket comes from (a supervised process, or an external endpoint).
 * When the model goes away, every call in flight fails at once with UNAVAILABLE instead of waiting for its deadline.
 */
export abstract class ModelEndpoint {
  state: ModelState = 'starting';
  /** Why the model is not ready (init error, crash), kept until it is ready again. */
  error?: string;
  private client?: RawUnaryChannel;
  private readonly inFlight = new Set<InFlight>();

  constructor(readonly name: string, protected readonly options: EndpointOptions) {}

  abstract readonly source: string;
  /** Starts supervising; resolves once the first start settled (ready or not). */
  abstract start(): Promise<void>;
  abstract stop(graceMs: number): Promise<void>;

  get ready(): boolean {
    return this.state === 'ready' && this.client !== undefined;
  }

  get activeCalls(): number {
    return this.inFlight.size;
  }

  /** Why a call cannot go to this model now. */
  unavailable(): RpcFailure {
    const why = this.state === 'failed' ? `failed to start: ${this.error}` : this.state === 'starting' ? 'is starting' : this.error ? `is unavailable: ${this.error}` : `is ${this.state}`;
    return new RpcFailure(status.UNAVAILABLE, `model '${this.name}' ${why}`);
  }

  protected connect(socket: string): void {
    this.client?.close();
    this.client = new RawUnaryChannel(socket, this.options.maxMessageBytes);
  }

  /** The model went away: fail what is in flight now, and drop the channel. */
  protected disconnect(reason: string): void {
    const client = this.client;
    this.client = undefined;
    const failure = new RpcFailure(status.UNAVAILABLE, `model '${this.name}' ${reason}`);
    for (const pending of [...this.inFlight]) pending.fail(failure);
    client?.close();
  }

  /** Forwards one unary call's bytes to the model, with a deadline. */
  call(method: InferenceMethod, request: Buffer, deadline: Date, metadata?: Metadata): Promise<Buffer> {
    const client = this.client;
    if (!client || this.state !== 'ready') return Promise.reject(this.unavailable());
    if (method === 'ModelInfer' && this.inFlight.size >= this.options.maxConcurrency) {
      return Promise.reject(new RpcFailure(status.RESOURCE_EXHAUSTED, `model '${this.name}' has ${this.inFlight.size} requests in flight, its limit (--max-concurrency ${this.options.maxConcurrency}); retry later`));
    }
    return new Promise<Buffer>((resolve, reject) => {
      let settled = false;
      const pending: InFlight = {
        fail: (error) => {
          if (settled) return;
          settled = true;
          this.inFlight.delete(pending);
          pending.call?.cancel();
          reject(error);
        },
      };
      this.inFlight.add(pending);
      pending.call = client.call(methodPath(method), request, deadline, metadata, ({ code, details, metadata: trailers, response }) => {
        if (settled) return;
        settled = true;
        this.inFlight.delete(pending);
        if (code === status.OK) return resolve(response!);
        // The connection can drop before the supervisor hears of the exit: either way the message names the model.
        const message = code !== status.UNAVAILABLE ? details : this.state !== 'ready' ? this.unavailable().message : `model '${this.name}' is unavailable: ${details}`;
        reject(new RpcFailure(code, message, trailers));
      });
    });
  }
}
