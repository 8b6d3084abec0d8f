import { chmodSync, lstatSync, mkdirSync, unlinkSync } from 'node:fs';
import { dirname } from 'node:path';
import {
  Metadata, Server, ServerCredentials, status, type sendUnaryData, type ServerUnaryCall, type ServerWritableStream,
  type UntypedServiceImplementation,
} from '@grpc/grpc-js';
import type { Logger } from '@pyml/contract';
import type { Predictor } from './batcher.ts';
import { InvalidInputError, ModelError, describeError } from './errors.ts';
import { headerValue, wellFormed } from './header-text.ts';
import type { ModelHost } from './model-host.ts';
import { receiveDeadline } from './receive-deadline.ts';
import { HealthStatus, decodeInferRequest } from './oip/codec.ts';
import { encodeResponseFor, requestInputs } from './oip/infer-exchange.ts';
import { HealthWatches } from './oip/health-watch.ts';
import { HEALTH_SERVICE, INFERENCE_SERVICE, type HealthCheckRequest, type ModelRef, healthService, inferenceService } from './oip/service.ts';
import { RUNTIME_NAME, RUNTIME_VERSION } from './version.ts';

export interface ServerOptions {
  logger: Logger;
  /** Largest request or response, in bytes. */
  maxMessageBytes: number;
  /** Longest a call's request may take to arrive when its caller set no deadline (default 30 s). */
  receiveTimeoutMs?: number;
}

/** A gRPC status (with the tensor to blame in the `pyml-tensor` trailer, when there is one). */
interface StatusError { code: status; details: string; metadata?: Metadata }

/** A failure that already knows its gRPC status (not found, unavailable). */
class RpcError extends Error {
  constructor(readonly code: status, message: string) {
    super(message);
  }
}

/**
 * The status for a failure. Names and messages come from the caller and may hold any character: the tensor's name
 * goes into `pyml-tensor` made header-safe and the details made well-formed, since a throw here (grpc-js refuses
 * an illegal metadata value) would leave the call unanswered.
 */
function statusFor(error: unknown, logger: Logger): StatusError {
  if (error instanceof RpcError) return { code: error.code, details: wellFormed(error.message) };
  const metadata = new Metadata();
  if (error instanceof InvalidInputError) {
    if (error.tensor) metadata.set('pyml-tensor', headerValue(error.tensor));
    return { code: status.INVALID_ARGUMENT, details: wellFormed(error.message), metadata };
  }
  if (error instanceof ModelError && error.tensor) metadata.set('pyml-tensor', headerValue(error.tensor));
  logger.error('prediction failed', { error: describeError(error) });
  return { code: status.INTERNAL, details: wellFormed(error instanceof ModelError ? error.message : `internal error: ${describeError(error)}`), metadata };
}

/** Answers a failed call, whatever happens: should building its status throw anyway, the call still gets one. */
function answerFailure(cb: sendUnaryData<never>, error: unknown, logger: Logger): void {
  let failure: StatusError;
  try {
    failure = statusFor(error, logger);
  } catch (unexpected) {
    logger.error('cannot build the status of a failed call', { error: describeError(unexpected) });
    failure = { code: status.INTERNAL, details: 'internal error: the failure could not be described' };
  }
  cb(failure);
}

/** A request whose bytes did not decode (see service.ts `tolerant`). */
function malformed(request: { malformed?: string }): StatusError | undefined {
  return request.malformed === undefined ? undefined : { code: status.INVALID_ARGUMENT, details: wellFormed(`malformed request: ${request.malformed}`) };
}

/**
 * The Open Inference Protocol server of one model. Listens first (live), becomes ready once a ModelHost is
 * attached, and drains on shutdown: no new calls, in-flight calls finish.
 */
export class InferenceServer {
  private readonly server: Server;
  private host?: ModelHost;
  private predictor?: Predictor;
  private draining = false;
  private inFlight = 0;
  private idle?: () => void;
  private readonly watches = new HealthWatches((service) => this.healthOf(service));

  constructor(private readonly options: ServerOptions) {
    this.server = new Server({
      'grpc.max_receive_message_length': options.maxMessageBytes,
      'grpc.max_send_message_length': options.maxMessageBytes,
      // Channelz bookkeeping costs per call and nothing here reads it.
      'grpc.enable_channelz': 0,
      interceptors: [receiveDeadline(options.receiveTimeoutMs ?? 30_000)],
    });
    this.server.addService(inferenceService, this.inferenceHandlers());
    this.server.addService(healthService, this.healthHandlers());
  }

  get ready(): boolean {
    return this.host !== undefined && !this.draining;
  }

  /** Binds a Unix socket (owner-only, mode 0600) and optionally a TCP address; returns the bound TCP port. */
  async listen(socket: string, tcp?: string): Promise<{ tcpPort?: number }> {
    mkdirSync(dirname(socket), { recursive: true, mode: 0o700 });
    removeStaleSocket(socket);
    // The umask makes the socket owner-only from the moment it exists; the chmod states it for the record.
    const umask = process.umask(0o177);
    try {
      await this.bind(`unix:${socket}`);
    } finally {
      process.umask(umask);
    }
    chmodSync(socket, 0o600);
    const tcpPort = tcp ? await this.bind(tcp) : undefined;
    return { tcpPort };
  }

  private bind(address: string): Promise<number> {
    return new Promise((resolve, reject) => {
      this.server.bindAsync(address, ServerCredentials.createInsecure(), (error, port) => (error ? reject(new Error(`cannot listen on ${address}: ${error.message}`)) : resolve(port)));
    });
  }

  /** Serves this model from now on. */
  attach(host: ModelHost, predictor: Predictor): void {
    this.host = host;
    this.predictor = predictor;
    this.watches.changed();
  }

  forceShutdown(): void {
    this.server.forceShutdown();
  }

  /** Stops taking calls and resolves once in-flight ones are answered; false if `graceMs` ran out first. */
  async drain(graceMs: number): Promise<boolean> {
    this.draining = true;
    // Watchers hear NOT_SERVING, then their calls end: shutdown waits for every open call.
    this.watches.endAll();
    const closed = new Promise<void>((resolve) => this.server.tryShutdown(() => resolve()));
    const settled = this.inFlight === 0 ? Promise.resolve() : new Promise<void>((resolve) => { this.idle = resolve; });
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<false>((resolve) => { timer = setTimeout(() => resolve(false), graceMs); });
    const clean = await Promise.race([Promise.all([closed, settled]).then(() => true as const), timeout]);
    clearTimeout(timer);
    if (!clean) this.server.forceShutdown();
    return clean;
  }

  private matches(name: string, version: string): boolean {
    const host = this.host;
    return !!host && (name === '' || name === host.name) && (version === '' || version === host.version);
  }

  private inferenceHandlers(): UntypedServiceImplementation {
    const reply = <T>(cb: sendUnaryData<T>, value: T) => cb(null, value);
    return {
      ServerLive: (_call: ServerUnaryCall<unknown, boolean>, cb: sendUnaryData<boolean>) => reply(cb, true),
      ServerReady: (_call: ServerUnaryCall<unknown, boolean>, cb: sendUnaryData<boolean>) => reply(cb, this.ready),
      ModelReady: (call: ServerUnaryCall<ModelRef, boolean>, cb: sendUnaryData<boolean>) => {
        const bad = malformed(call.request);
        if (bad) return cb(bad);
        reply(cb, this.ready && this.matches(call.request.name, call.request.version));
      },
      ServerMetadata: (_call: ServerUnaryCall<unknown, unknown>, cb: sendUnaryData<unknown>) =>
        reply(cb, { name: RUNTIME_NAME, version: RUNTIME_VERSION, extensions: [] }),
      ModelMetadata: (call: ServerUnaryCall<ModelRef, unknown>, cb: sendUnaryData<unknown>) => {
        const bad = malformed(call.request);
        if (bad) return cb(bad);
        const host = this.host;
        if (!host) return cb({ code: status.UNAVAILABLE, details: 'model is still initialising' });
        if (!this.matches(call.request.name, call.request.version)) return cb(statusFor(this.notFound(call.request.name, call.request.version), this.options.logger));
        reply(cb, {
          name: host.name, versions: [host.version], platform: `pyml-${host.kind}`,
          inputs: host.signature.inputs, outputs: host.signature.outputs,
        });
      },
      ModelInfer: (call: ServerUnaryCall<Buffer, Buffer>, cb: sendUnaryData<Buffer>) => {
        this.inFlight++;
        const settled = () => {
          if (--this.inFlight === 0 && this.idle) this.idle();
        };
        // settled() first: whatever answering does, the call no longer holds a drain.
        this.infer(call.request).then(
          (response) => { settled(); cb(null, response); },
          (error: unknown) => { settled(); answerFailure(cb, error, this.options.logger); },
        );
      },
    };
  }

  private notFound(name: string, version: string): RpcError {
    const host = this.host!;
    return new RpcError(status.NOT_FOUND, `model '${name}'${version ? ` version '${version}'` : ''} is not served here (this is '${host.name}' version '${host.version}')`);
  }

  private async infer(request: Buffer): Promise<Buffer> {
    const host = this.host;
    const predictor = this.predictor;
    if (!host || !predictor) throw new RpcError(status.UNAVAILABLE, 'model is still initialising');
    const req = decodeInferRequest(request);
    if (!this.matches(req.modelName, req.modelVersion)) throw this.notFound(req.modelName, req.modelVersion);
    const outputs = await predictor.predict(requestInputs(req, host));
    return encodeResponseFor(req, host, outputs);
  }

  /** The server, its two services and (once loaded) the model by name; anything else is unknown. */
  private healthOf(service: string): (typeof HealthStatus)[keyof typeof HealthStatus] {
    const known = service === '' || service === INFERENCE_SERVICE || service === HEALTH_SERVICE || (this.host && service === this.host.name);
    if (!known) return HealthStatus.SERVICE_UNKNOWN;
    return this.ready ? HealthStatus.SERVING : HealthStatus.NOT_SERVING;
  }

  private healthHandlers(): UntypedServiceImplementation {
    return {
      Check: (call: ServerUnaryCall<HealthCheckRequest, number>, cb: sendUnaryData<number>) => {
        const bad = malformed(call.request);
        if (bad) return cb(bad);
        const health = this.healthOf(call.request.service);
        if (health === HealthStatus.SERVICE_UNKNOWN) return cb({ code: status.NOT_FOUND, details: wellFormed(`unknown service '${call.request.service}'`) });
        cb(null, health);
      },
      Watch: (call: ServerWritableStream<HealthCheckRequest, number>) => {
        const bad = malformed(call.request);
        if (bad) return void call.emit('error', bad);
        this.watches.add(call, call.request.service, (health) => health);
      },
    };
  }
}

/** A socket file left by a previous run would make bind fail; anything else at that path is left alone. */
function removeStaleSocket(path: string): void {
  try {
    if (lstatSync(path).isSocket()) unlinkSync(path);
  } catch {
    // Nothing there.
  }
}
