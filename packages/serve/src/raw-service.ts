import type { MethodDefinition, ServiceDefinition } from '@grpc/grpc-js';
import { HEALTH_SERVICE, INFERENCE_SERVICE } from '@pyml/runtime/oip/service';

/**
 * The V2 inference and health services with identity (de)serializers: the router receives and forwards message
 * bytes as they are, decoding only what it must (a model name) and never re-encoding a request or response.
 */
const identity = (b: Buffer): Buffer => b;

function raw(service: string, method: string, responseStream = false): MethodDefinition<Buffer, Buffer> {
  return {
    path: `/${service}/${method}`, requestStream: false, responseStream, originalName: method,
    requestSerialize: identity, requestDeserialize: identity, responseSerialize: identity, responseDeserialize: identity,
  };
}

export const INFERENCE_METHODS = ['ServerLive', 'ServerReady', 'ModelReady', 'ServerMetadata', 'ModelMetadata', 'ModelInfer'] as const;
export type InferenceMethod = (typeof INFERENCE_METHODS)[number];

export const rawInferenceService = Object.fromEntries(INFERENCE_METHODS.map((m) => [m, raw(INFERENCE_SERVICE, m)])) as Record<InferenceMethod, MethodDefinition<Buffer, Buffer>> & ServiceDefinition;
export const rawHealthService = { Check: raw(HEALTH_SERVICE, 'Check'), Watch: raw(HEALTH_SERVICE, 'Watch', true) } satisfies ServiceDefinition;

export const methodPath = (method: InferenceMethod): string => `/${INFERENCE_SERVICE}/${method}`;
export const HEALTH_CHECK_PATH = `/${HEALTH_SERVICE}/Check`;
