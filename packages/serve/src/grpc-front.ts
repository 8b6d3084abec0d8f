import type { Http2Server, IncomingHttpHeaders, ServerHttp2Session, ServerHttp2Stream } from 'node:http2';
import { type AccessLog, requestText } from './access-log.ts';
import { status } from '@pyml/runtime/protocol';
import {
  HealthStatus, decodeHealthCheckRequest, decodeModelRef, encodeFlag, encodeHealthCheckResponse, encodeServerMetadata, HealthWatches, HEALTH_SERVICE, INFERENCE_SERVICE, RUNTIME_VERSION,
} from '@pyml/runtime/protocol';
import { CallerGone } from './caller-gone.ts';
// Answers "trailers-only" (the status, and any trailer metadata such as the model's `pyml-tensor`, in the headers).
import { createGrpcServer, isGrpcCall, parseTimeout, receiveUnary, respondFailure as fail, respondMessage, streamingCall, trackSession } from '@pyml/runtime/protocol';
import { REFLECTION_PATHS, serveReflection } from '@pyml/runtime/protocol';
import type { ModelRouter } from './model-router.ts';
import type { ModelRepository } from './repository.ts';
import { repositoryMethods } from './repository-grpc.ts';
import { ROUTING_KEY_HEADER } from './split.ts';
import { HEALTH_CHECK_PATH, methodPath } from './raw-service.ts';
import { RpcFailure, asRpcFailure } from './rpc-failure.ts';

/**
 * A unary method: the request message's bytes, the caller's deadline (ms since the epoch) and word of the caller
 * going away in; the response's bytes out.
 */
type Unary = (request: Buffer, deadline: number | undefined, gone: CallerGone, routingKey?: string) => Buffer | Promise<Buffer>;

const WATCH_PATH = `/${HEALTH_SERVICE}/Watch`;

/**
 * The service's gRPC front end: the V2 inference service and grpc.health.v1, served on node:http2 with the gRPC
 * framing of grpc-wire.ts. ModelInfer's bytes go to the model's socket untouched (the router reads only field 1,
 * the model's name); the service-level calls (live, ready, server metadata, health) are answered here.
 */
export class GrpcFront {
  private readonly servers: Http2Server[] = [];
  private readonly sessions = new Set<ServerHttp2Session>();
  private readonly watches = new HealthWatches((service) => this.healthOf(service));
  private readonly unfollow: (() => void)[];
  private readonly unary: Map<string, Unary>;
  private closing = false;
  /** The model repository behind the repository extension's methods (absent without --repository: UNIMPLEMENTED). */
  repository?: ModelRepository;

  constructor(private readonly router: ModelRouter, private readonly maxMessageBytes: number, private readonly access?: AccessLog) {
    this.unary = this.unaryMethods();
    const followed = new Set(router.endpoints);
    this.unfollow = router.endpoints.map((e) => e.follow(() => this.watches.changed()));
    // Versions loaded while serving (the model repository) are followed too; adding or retiring one is a change.
    this.unfollow.push(router.onChange(() => {
      for (const e of router.endpoints) {
        if (followed.has(e)) continue;
        followed.add(e);
        this.unfollow.push(e.follow(() => this.watches.changed()));
      }
      this.watches.changed();
    }));
  }

  /** Binds HOST:PORT (port 0 picks one; [v6]:PORT) or unix:PATH; returns the bound port (0 for a socket). */
  listen(address: string): Promise<number> {
    const server = createGrpcServer(this.maxMessageBytes);
    server.on('session', (session) => trackSession(this.sessions, session, this.closing));
    server.on('stream', (stream, headers) => this.serve(stream, headers));
    const unix = address.startsWith('unix:') ? address.slice('unix:'.length) : undefined;
    const at = unix ? undefined : /^\[?([^\]]*)\]?:(\d+)$/.exec(address);
    if (!unix && !at) return Promise.reject(new Error(`cannot listen for gRPC on ${address}: expected HOST:PORT or unix:PATH`));
    return new Promise((resolve, reject) => {
      server.once('error', (error) => reject(new Error(`cannot listen for gRPC on ${address}: ${error.message}`)));
      const bound = () => {
        this.servers.push(server);
        const where = server.address();
        resolve(typeof where === 'object' && where ? where.port : 0);
      };
      if (unix) server.listen(unix, bound);
      else server.listen(Number(at![2]), at![1], bound);
    });
  }

  /** Drains: watchers hear NOT_SERVING and end, new calls are refused, calls in flight finish (for up to `graceMs`). */
  async close(graceMs: number): Promise<void> {
    this.closing = true;
    for (const stop of this.unfollow) stop();
    this.watches.endAll();
    const closed = this.servers.map((server) => new Promise<void>((resolve) => server.close(() => resolve())));
    // GOAWAY: clients stop sending new calls on these connections; each closes when its last call ends.
    for (const session of this.sessions) session.close();
    let timer: NodeJS.Timeout | undefined;
    const grace = new Promise<void>((resolve) => { timer = setTimeout(resolve, graceMs); });
    await Promise.race([Promise.all(closed), grace]);
    clearTimeout(timer);
    for (const session of this.sessions) session.destroy();
    await Promise.all(closed);
  }

  private serve(stream: ServerHttp2Stream, headers: IncomingHttpHeaders): void {
    if (!isGrpcCall(stream, headers)) return;
    const path = String(headers[':path']);
    if (this.access && path !== WATCH_PATH) {
      const started = performance.now();
      const log = this.access;
      // The status is in the trailers, or in the headers of a trailers-only answer; none if the caller reset first.
      stream.once('close', () => log({
        protocol: 'grpc', request: requestText('POST', path),
        status: Number(stream.sentTrailers?.['grpc-status'] ?? stream.sentHeaders?.['grpc-status'] ?? status.CANCELLED), ms: performance.now() - started,
      }));
    }
    if (this.closing) return fail(stream, new RpcFailure(status.UNAVAILABLE, 'the service is shutting down'));
    if (REFLECTION_PATHS.has(path)) return serveReflection(stream, headers);
    const timeout = parseTimeout(headers['grpc-timeout']);
    const deadline = timeout === undefined ? undefined : Date.now() + timeout;
    // Receiving the request counts against its deadline (the caller's, capped by --deadline-ms): a request stream
    // that never ends, or trickles, is answered DEADLINE_EXCEEDED then, and its bytes are dropped.
    receiveUnary(stream, headers, {
      maxMessageBytes: this.maxMessageBytes,
      what: `request to ${path}`,
      receiveMs: this.router.deadline(deadline).getTime() - Date.now(),
      onMessage: (request) => this.dispatch(stream, path, request, deadline, headers[ROUTING_KEY_HEADER]),
      onFailure: (failure) => fail(stream, failure),
    });
  }

  /** Runs the method for a whole request message. */
  private dispatch(stream: ServerHttp2Stream, path: string, request: Buffer, deadline: number | undefined, key?: string | string[]): void {
    if (path === WATCH_PATH) return this.watch(stream, request);
    const method = this.unary.get(path);
    if (!method) return fail(stream, new RpcFailure(status.UNIMPLEMENTED, `this service has no method ${path}`));
    // Plain promise callbacks: the hot path (ModelInfer) takes no extra turns.
    let result: Buffer | Promise<Buffer>;
    const gone = new CallerGone();
    // 'aborted': the client reset the stream before our answer.
    stream.once('aborted', () => gone.fire());
    try {
      // A split keeps one caller on one version by this metadata (see split.ts).
      result = method(request, deadline, gone, typeof key === 'string' && key !== '' ? key : undefined);
    } catch (error) {
      return fail(stream, asRpcFailure(error));
    }
    if (Buffer.isBuffer(result)) respondMessage(stream, result);
    else result.then((response) => respondMessage(stream, response), (error: unknown) => fail(stream, asRpcFailure(error)));
  }

  private unaryMethods(): Map<string, Unary> {
    const router = this.router;
    return new Map<string, Unary>([
      [methodPath('ModelInfer'), (request, deadline, gone, key) => router.infer(request, 'grpc', deadline, undefined, gone, key)],
      [methodPath('ServerLive'), () => encodeFlag(true)],
      [methodPath('ServerReady'), () => encodeFlag(router.allReady)],
      [methodPath('ModelReady'), (request, deadline) => {
        const ref = decodeModelRef(request);
        let model;
        try {
          model = router.find(ref.name, ref.version);
        } catch {
          return encodeFlag(false);
        }
        if (!model.servable) return encodeFlag(false);
        // The model itself knows its version.
        return ref.version ? model.call('ModelReady', request, router.deadline(deadline)) : encodeFlag(true);
      }],
      [methodPath('ServerMetadata'), () => encodeServerMetadata({ name: 'pyml-serve', version: RUNTIME_VERSION, extensions: [] })],
      [methodPath('ModelMetadata'), (request, deadline) => {
        const ref = decodeModelRef(request);
        return router.find(ref.name, ref.version).call('ModelMetadata', request, router.deadline(deadline));
      }],
      ...repositoryMethods(() => this.repository),
      [HEALTH_CHECK_PATH, (request) => {
        const service = decodeHealthCheckRequest(request).service;
        const health = this.healthOf(service);
        // Check on an unknown service is NOT_FOUND (the router's message names the models).
        if (health === HealthStatus.SERVICE_UNKNOWN) router.find(service);
        return encodeHealthCheckResponse(health);
      }],
    ]);
  }

  /** The service as a whole ('' and its two services: all models servable), each model by name; else unknown. */
  private healthOf(service: string): (typeof HealthStatus)[keyof typeof HealthStatus] {
    let up: boolean;
    if (service === '' || service === INFERENCE_SERVICE || service === HEALTH_SERVICE) up = this.router.allReady;
    else if (this.router.has(service)) up = this.router.find(service).servable;
    else return HealthStatus.SERVICE_UNKNOWN;
    return up && !this.closing ? HealthStatus.SERVING : HealthStatus.NOT_SERVING;
  }

  private watch(stream: ServerHttp2Stream, request: Buffer): void {
    let service: string;
    try {
      service = decodeHealthCheckRequest(request).service;
    } catch (error) {
      return fail(stream, new RpcFailure(status.INVALID_ARGUMENT, `bad HealthCheckRequest: ${(error as Error).message}`));
    }
    this.watches.add(streamingCall(stream), service, encodeHealthCheckResponse);
  }
}


