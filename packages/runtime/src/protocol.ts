/**
 * @pyml/runtime/protocol: what `pyml serve` shares with the model server in the image, without the gRPC server
 * (and so without its grpc-js runtime): the V2 codec and JSON form, the service definitions and health watches,
 * one ModelInfer exchange, the V2 REST routes and body/answer handling over node:http, the adaptive batcher, request
 * errors and validation, header text, the version.
 */
export * from './oip/codec.ts';
export * from './oip/json.ts';
export * from './oip/service.ts';
export * from './oip/health-watch.ts';
export * from './oip/infer-exchange.ts';
export * from './oip/http.ts';
export * from './batcher.ts';
export * from './errors.ts';
export * from './validate.ts';
export * from './header-text.ts';
export * from './version.ts';
