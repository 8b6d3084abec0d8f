import { Server, ServerCredentials, status, type sendUnaryData, type ServerUnaryCall, type UntypedServiceImplementation } from '@grpc/grpc-js';
import {
  HealthStatus, decodeHealthCheckRequest, decodeModelRef, encodeFlag, encodeHealthCheckResponse, encodeServerMetadata,
} from '@pyml/runtime/oip/codec';
import { HEALTH_SERVICE, INFERENCE_SERVICE } from '@pyml/runtime/oip/service';
import { RUNTIME_VERSION } from '@pyml/runtime/version';
import type { ModelRouter } from './model-router.ts';
import { rawHealthService, rawInferenceService } from './raw-service.ts';
import { RpcFailure } from './rpc-failure.ts';

type Call = ServerUnaryCall<Buffer, Buffer>;
type Callback = sendUnaryData<Buffer>;

function answer(cb: Callback, work: () => Buffer | Promise<Buffer>): void {
  Promise.resolve().then(work).then(
    (response) => cb(null, response),
    (error: unknown) => cb((error instanceof RpcFailure ? error : new RpcFailure(status.INTERNAL, `internal error: ${(error as Error).message}`)).toServiceError()),
  );
}

/**
 * The service's gRPC front end: the V2 inference service and grpc.health.v1 over raw bytes. Requests for a model
 * go to its socket untouched; the service-level calls (live, ready, server metadata, health) are answered here.
 */
export class GrpcFront {
  private readonly server: Server;

  constructor(private readonly router: ModelRouter, maxMessageBytes: number) {
    // Channelz bookkeeping costs per call and nothing here reads it.
    this.server = new Server({ 'grpc.max_receive_message_length': maxMessageBytes, 'grpc.max_send_message_length': maxMessageBytes, 'grpc.enable_channelz': 0 });
    this.server.addService(rawInferenceService, this.inference());
    this.server.addService(rawHealthService, this.health());
  }

  /** Binds HOST:PORT (port 0 picks one) or unix:PATH; returns the bound port. */
  listen(address: string): Promise<number> {
    return new Promise((resolve, reject) => {
      this.server.bindAsync(address, ServerCredentials.createInsecure(), (error, port) => (error ? reject(new Error(`cannot listen for gRPC on ${address}: ${error.message}`)) : resolve(port)));
    });
  }

  close(graceMs: number): Promise<void> {
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
      ModelInfer: (call: Call, cb: Callback) => answer(cb, () => router.infer(call.request, 'grpc', call.getDeadline() as Date | number)),
    };
  }

  private health(): UntypedServiceImplementation {
    const router = this.router;
    return {
      Check: (call: Call, cb: Callback) => answer(cb, () => {
        const service = decodeHealthCheckRequest(call.request).service;
        if (service === '' || service === INFERENCE_SERVICE || service === HEALTH_SERVICE) {
          return encodeHealthCheckResponse(router.allReady ? HealthStatus.SERVING : HealthStatus.NOT_SERVING);
        }
        const model = router.find(service);
        return encodeHealthCheckResponse(model.servable ? HealthStatus.SERVING : HealthStatus.NOT_SERVING);
      }),
    };
  }
}
