import { status } from '@grpc/grpc-js';
import {
  HealthStatus, decodeHealthCheckRequest, decodeModelRef, encodeFlag, encodeHealthCheckResponse, encodeServerMetadata,
} from '@pyml/runtime/oip/codec';
import { RawGrpcServer, type UnaryContext } from '@pyml/runtime/oip/raw-grpc-server';
import { HEALTH_SERVICE, INFERENCE_SERVICE } from '@pyml/runtime/oip/service';
import { RUNTIME_VERSION } from '@pyml/runtime/version';
import type { ModelRouter } from './model-router.ts';
import { HEALTH_CHECK_PATH, methodPath } from './raw-service.ts';
import { RpcFailure } from './rpc-failure.ts';

/** Anything a handler throws that is not already a status becomes INTERNAL, with its message. */
function asFailure(error: unknown): RpcFailure {
  return error instanceof RpcFailure ? error : new RpcFailure(status.INTERNAL, `internal error: ${(error as Error).message}`);
}

/**
 * The service's gRPC front end: the V2 inference service and grpc.health.v1 over raw bytes (RawGrpcServer: no
 * grpc-js server machinery per call). Requests for a model go to its socket untouched; the service-level calls
 * (live, ready, server metadata, health) are answered here.
 */
export class GrpcFront {
  private readonly server: RawGrpcServer;

  constructor(private readonly router: ModelRouter, maxMessageBytes: number) {
    this.server = new RawGrpcServer(maxMessageBytes);
    const guarded = (fn: (request: Buffer, call: UnaryContext) => Buffer | Promise<Buffer>) => async (request: Buffer, call: UnaryContext) => {
      try {
        return await fn(request, call);
      } catch (error) {
        throw asFailure(error);
      }
    };
    for (const [method, fn] of Object.entries(this.inference())) this.server.handle(methodPath(method as keyof ReturnType<GrpcFront['inference']>), guarded(fn));
    this.server.handle(HEALTH_CHECK_PATH, guarded(this.healthCheck()));
  }

  /** Binds HOST:PORT (port 0 picks one) or unix:PATH; returns the bound port. */
  async listen(address: string): Promise<number> {
    try {
      return await this.server.listen(address);
    } catch (error) {
      throw new Error(`cannot listen for gRPC on ${address}: ${(error as Error).message}`);
    }
  }

  close(graceMs: number): Promise<void> {
    return new Promise((resolve) => {
      const timer = setTimeout(() => { this.server.forceShutdown(); resolve(); }, graceMs);
      void this.server.tryShutdown().then(() => { clearTimeout(timer); resolve(); });
    });
  }

  private inference() {
    const router = this.router;
    return {
      ServerLive: () => encodeFlag(true),
      ServerReady: () => encodeFlag(router.allReady),
      ModelReady: async (request: Buffer, call: UnaryContext) => {
        const ref = decodeModelRef(request);
        let model;
        try {
          model = router.find(ref.name);
        } catch {
          return encodeFlag(false);
        }
        if (!model.ready) return encodeFlag(false);
        // The model itself knows its version.
        return ref.version ? model.call('ModelReady', request, router.deadline(call.deadline)) : encodeFlag(true);
      },
      ServerMetadata: () => encodeServerMetadata({ name: 'pyml-serve', version: RUNTIME_VERSION, extensions: [] }),
      ModelMetadata: (request: Buffer, call: UnaryContext) => {
        const model = router.find(decodeModelRef(request).name);
        return model.call('ModelMetadata', request, router.deadline(call.deadline));
      },
      ModelInfer: (request: Buffer, call: UnaryContext) => router.infer(request, 'grpc', call.deadline),
    };
  }

  private healthCheck() {
    const router = this.router;
    return (request: Buffer) => {
      const service = decodeHealthCheckRequest(request).service;
      if (service === '' || service === INFERENCE_SERVICE || service === HEALTH_SERVICE) {
        return encodeHealthCheckResponse(router.allReady ? HealthStatus.SERVING : HealthStatus.NOT_SERVING);
      }
      const model = router.find(service);
      return encodeHealthCheckResponse(model.ready ? HealthStatus.SERVING : HealthStatus.NOT_SERVING);
    };
  }
}
