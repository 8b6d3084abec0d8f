import type { MethodDefinition, ServiceDefinition } from '@grpc/grpc-js';
import {
  type ModelMetadata, type ServerMetadata, decodeEmpty, decodeFlag, decodeHealthCheckRequest, decodeHealthCheckResponse,
  decodeModelMetadata, decodeModelRef, decodeServerMetadata, encodeEmpty, encodeFlag, encodeHealthCheckRequest,
  encodeHealthCheckResponse, encodeModelMetadata, encodeModelRef, encodeServerMetadata,
} from './codec.ts';

/**
 * grpc-js service definitions built by hand over the codec, so nothing parses .proto files at run time. The same
 * objects serve as client definitions (`grpc.makeGenericClientConstructor`).
 */

export const INFERENCE_SERVICE = 'inference.GRPCInferenceService';
export const HEALTH_SERVICE = 'grpc.health.v1.Health';

function unary<Req, Res>(
  service: string, method: string,
  requestSerialize: (v: Req) => Buffer, requestDeserialize: (b: Buffer) => Req,
  responseSerialize: (v: Res) => Buffer, responseDeserialize: (b: Buffer) => Res,
  responseStream = false,
): MethodDefinition<Req, Res> {
  return {
    path: `/${service}/${method}`, requestStream: false, responseStream, originalName: method,
    requestSerialize, requestDeserialize, responseSerialize, responseDeserialize,
  };
}

const identity = (b: Buffer): Buffer => b;
/** `malformed`: why the request's bytes did not decode; the handler answers INVALID_ARGUMENT with it. */
export type ModelRef = { name: string; version: string; malformed?: string };
export type HealthCheckRequest = { service: string; malformed?: string };

/**
 * A request deserializer that never throws: grpc-js answers a throwing deserializer with INTERNAL, but corrupt
 * bytes are the caller's fault (INVALID_ARGUMENT), so the failure travels to the handler instead.
 */
function tolerant<T extends object>(decode: (b: Buffer) => T, empty: T): (b: Buffer) => T & { malformed?: string } {
  return (b) => {
    try {
      return decode(b);
    } catch (error) {
      return { ...empty, malformed: error instanceof Error ? error.message : String(error) };
    }
  };
}
const decodeModelRefOrWhy = tolerant(decodeModelRef, { name: '', version: '' });
const decodeHealthCheckOrWhy = tolerant(decodeHealthCheckRequest, { service: '' });

/**
 * The Open Inference Protocol service. ModelInfer carries encoded bytes both ways: the handler decodes and encodes
 * itself, because grpc-js turns a throwing deserializer into INTERNAL, and a bad tensor must be INVALID_ARGUMENT.
 * Routers forward those bytes untouched (see `readModelName`).
 */
export const inferenceService = {
  ServerLive: unary<Record<string, never>, boolean>(INFERENCE_SERVICE, 'ServerLive', encodeEmpty, decodeEmpty, encodeFlag, decodeFlag),
  ServerReady: unary<Record<string, never>, boolean>(INFERENCE_SERVICE, 'ServerReady', encodeEmpty, decodeEmpty, encodeFlag, decodeFlag),
  ModelReady: unary<ModelRef, boolean>(INFERENCE_SERVICE, 'ModelReady', encodeModelRef, decodeModelRefOrWhy, encodeFlag, decodeFlag),
  ServerMetadata: unary<Record<string, never>, ServerMetadata>(INFERENCE_SERVICE, 'ServerMetadata', encodeEmpty, decodeEmpty, encodeServerMetadata, decodeServerMetadata),
  ModelMetadata: unary<ModelRef, ModelMetadata>(INFERENCE_SERVICE, 'ModelMetadata', encodeModelRef, decodeModelRefOrWhy, encodeModelMetadata, decodeModelMetadata),
  ModelInfer: unary<Buffer, Buffer>(INFERENCE_SERVICE, 'ModelInfer', identity, identity, identity, identity),
} satisfies ServiceDefinition;

/** grpc.health.v1.Health: Check (unary) and Watch (server streaming: the status now, then each change). */
export const healthService = {
  Check: unary<HealthCheckRequest, number>(HEALTH_SERVICE, 'Check', encodeHealthCheckRequest, decodeHealthCheckOrWhy, encodeHealthCheckResponse, decodeHealthCheckResponse),
  Watch: unary<HealthCheckRequest, number>(HEALTH_SERVICE, 'Watch', encodeHealthCheckRequest, decodeHealthCheckOrWhy, encodeHealthCheckResponse, decodeHealthCheckResponse, true),
} satisfies ServiceDefinition;
