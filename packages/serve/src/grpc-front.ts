import {
  Server, ServerCredentials, status, type sendUnaryData, type ServerUnaryCall, type ServerWritableStream, type UntypedServiceImplementation,
} from '@grpc/grpc-js';
import {
  HealthStatus, decodeHealthCheckRequest, decodeModelRef, encodeFlag, encodeHealthCheckResponse, encodeServerMetadata,
} from '@pyml/runtime/oip/codec';
import { HealthWatches } from '@pyml/runtime/oip/health-watch';
import { HEALTH_SERVICE, INFERENCE_SERVICE } from '@pyml/runtime/oip/service';
import { RUNTIME_VERSION } from '@pyml/runtime/version';
import type { ModelRouter } from './model-router.ts';
import { rawHealthService, rawInferenceService } from './raw-service.ts';
import { type RpcFailure, asRpcFailure } from './rpc-failure.ts';

type Call = ServerUnaryCall<Buffer, Buffer>;
type Callback = sendUnaryData<Buffer>;

function failure(error: unknown): ReturnType<RpcFailure['toServiceError']> {
  return asRpcFailure(error).toServiceError();
}

function answer(cb: Callback, work: () => Buffer | Promise<Buffer>): void {
  Promise.resolve().then(work).then((response) => cb(null, response), (error: unknown) => cb(failure(error)));
}

/**
 * The service's gRPC front end: the V2 inference service and grpc.health.v1 over raw bytes. Requests for a model
 * go to its socket untouched; the service-level calls (live, ready, server metadata, health) are answered here.
 */
export class GrpcFront {
  private readonly server: Server;
  private readonly watches = new HealthWatches((service) => this.healthOf(service));
  private readonly unfollow: (() => void)[];
  private closing = false;

  constructor(private readonly router: ModelRouter, maxMessageBytes: number) {
    // Channelz bookkeeping costs per call and nothing here reads it.
    this.server = new Server({ 'grpc.max_receive_message_length': maxMessageBytes, 'grpc.max_send_message_length': maxMessageBytes, 'grpc.enable_channelz': 0 });
    this.server.addService(rawInferenceService, this.inference());
    this.server.addService(rawHealthService, this.health());
    this.unfollow = router.endpoints.map((e) => e.follow(() => this.watches.changed()));
  }

  /** Binds HOST:PORT (port 0 picks one) or unix:PATH; returns the bound port. */
  listen(address: string): Promise<number> {
    return new Promise((resolve, reject) => {
      this.server.bindAsync(address, ServerCredentials.createInsecure(), (error, port) => (error ? reject(new Error(`cannot listen for gRPC on ${address}: ${error.message}`)) : resolve(port)));
    });
  }

  close(graceMs: number): Promise<void> {
    // Watchers hear NOT_SERVING, then their calls end: shutdown waits for every open call.
    this.closing = true;
    for (const stop of this.unfollow) stop();
    this.watches.endAll();
    return new Promise((resolve) => {
      const timer = setTimeout(() => { this.server.forceShutdown(); resolve(); }, graceMs);
      this.server.tryShutdown(() => { clearTimeout(timer); resolve(); });
    });
  }

  private inference(): UntypedServiceImplementation {
    const router = this.router;
    return {
      ServerLive: (_call: Call, cb: Callback) => answer(cb, () => encodeFlag(true)),
      ServerReady: (_call: Call, cb: Callback) => answer(cb, () => encodeFlag(router.allReady)),
      ModelReady: (call: Call, cb: Callback) => answer(cb, async () => {
        const ref = decodeModelRef(call.request);
        let model;
        try {
          model = router.find(ref.name);
        } catch {
          return encodeFlag(false);
        }
        if (!model.servable) return encodeFlag(false);
        // The model itself knows its version.
        return ref.version ? model.call('ModelReady', call.request, router.deadline(call.getDeadline())) : encodeFlag(true);
      }),
      ServerMetadata: (_call: Call, cb: Callback) => answer(cb, () => encodeServerMetadata({ name: 'pyml-serve', version: RUNTIME_VERSION, extensions: [] })),
      ModelMetadata: (call: Call, cb: Callback) => answer(cb, () => {
        const model = router.find(decodeModelRef(call.request).name);
        return model.call('ModelMetadata', call.request, router.deadline(call.getDeadline()));
      }),
      // The hot path: straight to the router's promise, no extra turn through answer().
      ModelInfer: (call: Call, cb: Callback) => router.infer(call.request, 'grpc', call.getDeadline() as Date | number).then((response) => cb(null, response), (error: unknown) => cb(failure(error))),
    };
  }

  /** The service as a whole ('' and its two services: all models servable), each model by name; else unknown. */
  private healthOf(service: string): (typeof HealthStatus)[keyof typeof HealthStatus] {
    let up: boolean;
    if (service === '' || service === INFERENCE_SERVICE || service === HEALTH_SERVICE) up = this.router.allReady;
    else if (this.router.has(service)) up = this.router.find(service).servable;
    else return HealthStatus.SERVICE_UNKNOWN;
    return up && !this.closing ? HealthStatus.SERVING : HealthStatus.NOT_SERVING;
  }

  private health(): UntypedServiceImplementation {
    return {
      Check: (call: Call, cb: Callback) => answer(cb, () => {
        const service = decodeHealthCheckRequest(call.request).service;
        const health = this.healthOf(service);
        // Check on an unknown service is NOT_FOUND (the router's message names the models).
        if (health === HealthStatus.SERVICE_UNKNOWN) this.router.find(service);
        return encodeHealthCheckResponse(health);
      }),
      Watch: (call: ServerWritableStream<Buffer, Buffer>) => {
        let service: string;
        try {
          service = decodeHealthCheckRequest(call.request).service;
        } catch (error) {
          call.emit('error', { code: status.INVALID_ARGUMENT, details: `bad HealthCheckRequest: ${(error as Error).message}` });
          return;
        }
        this.watches.add(call as ServerWritableStream<unknown, unknown>, service, encodeHealthCheckResponse);
      },
    };
  }
}
