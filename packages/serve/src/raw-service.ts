import { HEALTH_SERVICE, INFERENCE_SERVICE } from '@pyml/runtime/protocol';

/**
 * The V2 inference and health methods by path: the service forwards message bytes as they are, decoding only what
 * it must (a model name) and never re-encoding a request or response.
 */
export const INFERENCE_METHODS = ['ServerLive', 'ServerReady', 'ModelReady', 'ServerMetadata', 'ModelMetadata', 'ModelInfer'] as const;
export type InferenceMethod = (typeof INFERENCE_METHODS)[number];

export const methodPath = (method: InferenceMethod): string => `/${INFERENCE_SERVICE}/${method}`;
export const HEALTH_CHECK_PATH = `/${HEALTH_SERVICE}/Check`;
