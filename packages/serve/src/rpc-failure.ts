import { Metadata, status } from '@grpc/grpc-js';
import { InvalidInputError } from '@pyml/runtime/protocol';

/** A call's failure with its gRPC status (and trailers, e.g. the model's `pyml-tensor`), for both front ends. */
export class RpcFailure extends Error {
  constructor(readonly code: status, message: string, readonly metadata?: Metadata) {
    super(message);
  }

  /** What a grpc-js unary callback takes. */
  toServiceError(): { code: status; details: string; metadata?: Metadata } {
    return { code: this.code, details: this.message, ...(this.metadata ? { metadata: this.metadata } : {}) };
  }
}

/**
 * Any error as an RpcFailure: ours as they are, a request that does not decode (the codec's InvalidInputError)
 * INVALID_ARGUMENT, anything else INTERNAL (a bug here, not the caller's fault).
 */
export function asRpcFailure(error: unknown): RpcFailure {
  if (error instanceof RpcFailure) return error;
  if (error instanceof InvalidInputError) return new RpcFailure(status.INVALID_ARGUMENT, error.message);
  return new RpcFailure(status.INTERNAL, `internal error: ${(error as Error).message}`);
}

/** gRPC status → HTTP status for the REST front end (as KServe/Triton map them). */
export function httpStatusFor(code: status): number {
  switch (code) {
    case status.INVALID_ARGUMENT: case status.OUT_OF_RANGE: case status.FAILED_PRECONDITION: return 400;
    case status.NOT_FOUND: return 404;
    case status.RESOURCE_EXHAUSTED: return 429;
    case status.DEADLINE_EXCEEDED: return 504;
    case status.UNAVAILABLE: return 503;
    case status.UNIMPLEMENTED: return 501;
    case status.CANCELLED: return 499;
    default: return 500;
  }
}
