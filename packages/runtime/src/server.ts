import type { Http2Server, IncomingHttpHeaders, ServerHttp2Session, ServerHttp2Stream } from 'node:http2';
import { Metadata, status } from './oip/grpc-core.ts';
import type { Logger } from '@pyml/contract';
import type { Predictor } from './batcher.ts';
import { InvalidInputError, ModelError, describeError } from './errors.ts';
import { headerValue, wellFormed } from './header-text.ts';
import type { ModelHost } from './model-host.ts';
import {
  HealthStatus, decodeHealthCheckRequest, decodeInferRequest, decodeModelRef, encodeFlag, encodeHealthCheckResponse,
  encodeModelMetadata, encodeServerMetadata,
} from './oip/codec.ts';
import { RpcFailure, createGrpcServer, isGrpcCall, parseTimeout, receiveUnary, respondFailure, respondMessage, streamingCall, trackSession } from './oip/grpc-wire.ts';
import { encodeResponseFor, requestInputs } from './oip/infer-exchange.ts';
import { HealthWatches } from './oip/health-watch.ts';
import { REFLECTION_PATHS, serveReflection } from './oip/reflection.ts';
import { listenPrivately } from './private-socket.ts';
import { HEALTH_SERVICE, INFERENCE_SERVICE } from './oip/service.ts';
import { RUNTIME_NAME, RUNTIME_VERSION } from './version.ts';

export interface ServerOptions {
  logger: Logger;
  /** Largest request or response, in bytes. */
  maxMessageBytes: number;
  /** Longest a call's request may take to arrive when its caller set no shorter deadline (default 30 s). */
  receiveTimeoutMs?: number;
}

/** A unary method: the request message's bytes in, the response's bytes out. */
type Unary = (request: Buffer) => Buffer | Promise<Buffer>;

const WATCH_PATH = `/${HEALTH_SERVICE}/Watch`;
/** Largest timer Node keeps (a longer one fires at once). */
const MAX_TIMER_MS = 2 ** 31 - 1;

/**
 * The status for a failure. Names and messages come from the caller and may hold any character: the tensor's name
 * goes into `pyml-tensor` made header-safe (percent-encoded) and the details made well-formed, since a throw while
 * answering would leave the call unanswered.
 */
function failureFor(error: unknown, logger: Logger): RpcFailure {
  if (error instanceof RpcFailure) return new RpcFailure(error.code, wellFormed(error.message), error.metadata);
  const metadata = new Metadata();
  if (error instanceof InvalidInputError) {
    if (error.tensor) metadata.set('pyml-tensor', headerValue(error.tensor));
    return new RpcFailure(status.INVALID_ARGUMENT, wellFormed(error.message), metadata);
  }
  if (error instanceof ModelError && error.tensor) metadata.set('pyml-tensor', headerValue(error.tensor));
  logger.error('prediction failed', { error: describeError(error) });
  return new RpcFailure(status.INTERNAL, wellFormed(error instanceof ModelError ? error.message : `internal error: ${describeError(error)}`), metadata);
}

/** Request bytes that did not decode: the caller's fault. */
function malformed(error: unknown): RpcFailure {
  return new RpcFailure(status.INVALID_ARGUMENT, wellFormed(`malformed request: ${error instanceof Error ? error.message : String(error)}`));
}

function decodeOrRefuse<T>(decode: (b: Buffer) => T, request: Buffer): T {
  try {
    return decode(request);
  } catch (error) {
    throw malformed(error);
  }
}

/**
 * The Open Inference Protocol server of one model: inference.GRPCInferenceService and grpc.health.v1.Health, over
 * node:http2 with the gRPC framing of oip/grpc-wire.ts (the same code `pyml serve`'s front speaks). Listens first
 * (live), becomes ready once a ModelHost is attached, and drains on shutdown: no new calls, in-flight calls finish.
 * Every refusal (a message over the limit, a corrupt or unknown compression, a request that does not decode, one
 * that does not arrive in time) is answered with the caller's status, never INTERNAL.
 */
export class InferenceServer {
  private readonly servers: Http2Server[] = [];
  private readonly sessions = new Set<ServerHttp2Session>();
  private readonly unary: Map<string, Unary>;
  private host?: ModelHost;
  private predictor?: Predictor;
  private draining = false;
  private inFlight = 0;
  private idle?: () => void;
  private readonly watches = new HealthWatches((service) => this.healthOf(service));
  private readonly receiveTimeoutMs: number;

  constructor(private readonly options: ServerOptions) {
    this.receiveTimeoutMs = options.receiveTimeoutMs ?? 30_000;
    this.unary = this.unaryMethods();
  }

  get ready(): boolean {
    return this.host !== undefined && !this.draining;
  }

  /** Binds a Unix socket (owner-only, mode 0600) and optionally a TCP address (HOST:PORT); returns the bound TCP port. */
  async listen(socket: string, tcp?: string): Promise<{ tcpPort?: number }> {
    await listenPrivately(socket, () => this.bind(`unix:${socket}`, (server, done) => server.listen(socket, done)));
    if (!tcp) return {};
    const at = /^(?:\[([^\]]*)\]|([^:]*)):(\d+)$/.exec(tcp);
    if (!at || Number(at[3]) > 65535) throw new Error(`cannot listen on ${tcp}: expected HOST:PORT ([v6]:PORT for IPv6)`);
    const host = at[1] ?? (at[2] || undefined);
    const tcpPort = await this.bind(tcp, (server, done) => (host === undefined ? server.listen(Number(at[3]), done) : server.listen(Number(at[3]), host, done)));
    return { tcpPort };
  }

  private bind(address: string, listen: (server: Http2Server, done: () => void) => void): Promise<number> {
    const server = createGrpcServer(this.options.maxMessageBytes);
    server.on('session', (session) => trackSession(this.sessions, session, this.draining));
    server.on('stream', (stream, headers) => this.serve(stream, headers));
    return new Promise((resolve, reject) => {
      const failed = (error: Error) => reject(new Error(`cannot listen on ${address}: ${error.message}`));
      server.once('error', failed);
      listen(server, () => {
        server.off('error', failed);
        // A server error after listening (none is expected) is logged, never thrown.
        server.on('error', (error) => this.options.logger.error('gRPC server error', { address, error: describeError(error) }));
        this.servers.push(server);
        const where = server.address();
        resolve(typeof where === 'object' && where ? where.port : 0);
      });
    });
  }

  /** Serves this model from now on. */
  attach(host: ModelHost, predictor: Predictor): void {
    this.host = host;
    this.predictor = predictor;
    this.watches.changed();
  }

  forceShutdown(): void {
    this.draining = true;
    for (const session of this.sessions) session.destroy();
    for (const server of this.servers) server.close();
  }

  /** Stops taking calls and resolves once in-flight ones are answered; false if `graceMs` ran out first. */
  async drain(graceMs: number): Promise<boolean> {
    this.draining = true;
    // Watchers hear NOT_SERVING, then their calls end: closing waits for every open call.
    this.watches.endAll();
    const closed = Promise.all(this.servers.map((server) => new Promise<void>((resolve) => server.close(() => resolve()))));
    // GOAWAY: clients send no new calls on these connections; each closes once its last call is answered.
    for (const session of this.sessions) session.close();
    const settled = this.inFlight === 0 ? Promise.resolve() : new Promise<void>((resolve) => { this.idle = resolve; });
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<false>((resolve) => { timer = setTimeout(() => resolve(false), graceMs); });
    const clean = await Promise.race([Promise.all([closed, settled]).then(() => true as const), timeout]);
    clearTimeout(timer);
    if (!clean) for (const session of this.sessions) session.destroy();
    return clean;
  }

  private serve(stream: ServerHttp2Stream, headers: IncomingHttpHeaders): void {
    if (!isGrpcCall(stream, headers)) return;
    const path = String(headers[':path']);
    if (this.draining) return respondFailure(stream, new RpcFailure(status.UNAVAILABLE, 'the model server is shutting down'));
    if (REFLECTION_PATHS.has(path)) return serveReflection(stream, headers);
    const timeout = parseTimeout(headers['grpc-timeout']);
    const deadline = timeout === undefined ? undefined : Date.now() + timeout;
    // The request must arrive within the caller's deadline and within --receive-timeout (PYML_RECEIVE_TIMEOUT_MS).
    receiveUnary(stream, headers, {
      maxMessageBytes: this.options.maxMessageBytes,
      what: `request to ${path}`,
      receiveMs: Math.min(this.receiveTimeoutMs, timeout ?? Infinity),
      onMessage: (request) => this.dispatch(stream, path, request, deadline),
      onFailure: (failure) => respondFailure(stream, failure),
    });
  }

  /** Runs the method for a whole request message, answering by the caller's deadline at the latest. */
  private dispatch(stream: ServerHttp2Stream, path: string, request: Buffer, deadline: number | undefined): void {
    if (path === WATCH_PATH) return this.watch(stream, request);
    this.call(path, request, deadline, (failure, response) => (failure ? respondFailure(stream, failure) : respondMessage(stream, response!)));
  }

  /**
   * Runs one unary method on a request message, for either transport (gRPC here, pyml serve's frames in
   * frame-server.ts): `done` is called once, with the response message or the call's status, by `deadline` at the
   * latest. False when the method is unknown (`done` was then told UNIMPLEMENTED).
   */
  call(path: string, request: Buffer, deadline: number | undefined, done: (failure: RpcFailure | undefined, response?: Buffer) => void): void {
    const method = this.unary.get(path);
    if (!method) return done(new RpcFailure(status.UNIMPLEMENTED, `this server has no method ${path}`));
    let settled = false;
    let timer: NodeJS.Timeout | undefined;
    const settle = (failure: RpcFailure | undefined, response?: Buffer) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      done(failure, response);
    };
    if (deadline !== undefined) {
      timer = setTimeout(() => settle(new RpcFailure(status.DEADLINE_EXCEEDED, 'Deadline exceeded')), Math.min(MAX_TIMER_MS, Math.max(0, deadline - Date.now())));
    }
    const answer = (response: Buffer) => {
      if (response.length > this.options.maxMessageBytes) {
        return settle(new RpcFailure(status.RESOURCE_EXHAUSTED, `the response of ${response.length} bytes is larger than the limit of ${this.options.maxMessageBytes} bytes`));
      }
      settle(undefined, response);
    };
    const refuse = (error: unknown) => settle(this.failureOf(error));
    let result: Buffer | Promise<Buffer>;
    try {
      result = method(request);
    } catch (error) {
      return refuse(error);
    }
    if (Buffer.isBuffer(result)) answer(result);
    else result.then(answer, refuse);
  }

  /** The status of a failed call; should describing the failure throw anyway, the call still gets one. */
  failureOf(error: unknown): RpcFailure {
    try {
      return failureFor(error, this.options.logger);
    } catch (unexpected) {
      this.options.logger.error('cannot build the status of a failed call', { error: describeError(unexpected) });
      return new RpcFailure(status.INTERNAL, 'internal error: the failure could not be described');
    }
  }

  private unaryMethods(): Map<string, Unary> {
    const inference = (method: string) => `/${INFERENCE_SERVICE}/${method}`;
    return new Map<string, Unary>([
      [inference('ModelInfer'), (request) => this.trackInfer(request)],
      [inference('ServerLive'), () => encodeFlag(true)],
      [inference('ServerReady'), () => encodeFlag(this.ready)],
      [inference('ModelReady'), (request) => {
        const ref = decodeOrRefuse(decodeModelRef, request);
        return encodeFlag(this.ready && this.matches(ref.name, ref.version));
      }],
      [inference('ServerMetadata'), () => encodeServerMetadata({ name: RUNTIME_NAME, version: RUNTIME_VERSION, extensions: [] })],
      [inference('ModelMetadata'), (request) => {
        const ref = decodeOrRefuse(decodeModelRef, request);
        const host = this.host;
        if (!host) throw new RpcFailure(status.UNAVAILABLE, 'model is still initialising');
        if (!this.matches(ref.name, ref.version)) throw this.notFound(ref.name, ref.version);
        return encodeModelMetadata({
          name: host.name, versions: [host.version], platform: `pyml-${host.kind}`,
          inputs: host.signature.inputs, outputs: host.signature.outputs,
        });
      }],
      [`/${HEALTH_SERVICE}/Check`, (request) => {
        const { service } = decodeOrRefuse(decodeHealthCheckRequest, request);
        const health = this.healthOf(service);
        if (health === HealthStatus.SERVICE_UNKNOWN) throw new RpcFailure(status.NOT_FOUND, `unknown service '${service}'`);
        return encodeHealthCheckResponse(health);
      }],
    ]);
  }

  /** A prediction holds the drain until it settles, whatever its caller does meanwhile. */
  private trackInfer(request: Buffer): Promise<Buffer> {
    this.inFlight++;
    const settled = () => {
      if (--this.inFlight === 0 && this.idle) this.idle();
    };
    const result = this.infer(request);
    result.then(settled, settled);
    return result;
  }

  private matches(name: string, version: string): boolean {
    const host = this.host;
    return !!host && (name === '' || name === host.name) && (version === '' || version === host.version);
  }

  private notFound(name: string, version: string): RpcFailure {
    const host = this.host!;
    return new RpcFailure(status.NOT_FOUND, `model '${name}'${version ? ` version '${version}'` : ''} is not served here (this is '${host.name}' version '${host.version}')`);
  }

  private async infer(request: Buffer): Promise<Buffer> {
    const host = this.host;
    const predictor = this.predictor;
    if (!host || !predictor) throw new RpcFailure(status.UNAVAILABLE, 'model is still initialising');
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

  /** grpc.health.v1 Watch: the status now, then each change, until the caller goes or the server drains. */
  private watch(stream: ServerHttp2Stream, request: Buffer): void {
    let service: string;
    try {
      service = decodeHealthCheckRequest(request).service;
    } catch (error) {
      return respondFailure(stream, malformed(error));
    }
    this.watches.add(streamingCall(stream), service, encodeHealthCheckResponse);
  }
}
