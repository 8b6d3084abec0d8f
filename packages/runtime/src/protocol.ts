/**
 * @pyml/runtime/protocol: what `pyml serve` shares with the model server in the image, without the servers
 * themselves: the V2 codec and JSON form, the service definitions and health watches, gRPC's wire over node:http2
 * (framing, bounded decompression, receive deadlines, trailers-only statuses, RpcFailure), one ModelInfer exchange,
 * the V2 REST routes and body/answer handling over node:http, the adaptive batcher, request errors and validation,
 * header text, the version.
 */
export * from './oip/codec.ts';
export * from './oip/json.ts';
export * from './oip/service.ts';
export * from './oip/health-watch.ts';
export * from './oip/grpc-wire.ts';
export * from './oip/infer-exchange.ts';
export * from './oip/http.ts';
export * from './oip/frames.ts';
export * from './oip/grpc-core.ts';
export { REFLECTION_PATHS, serveReflection } from './oip/reflection.ts';
export * from './batcher.ts';
export * from './errors.ts';
export * from './validate.ts';
export * from './header-text.ts';
export * from './version.ts';
export { keepYoungGenerationSmall } from './young-generation.ts';
