import { status } from '@pyml/runtime/protocol';

/** A call's failure with its gRPC status, shared with the image's model server (it lives in @pyml/runtime's gRPC wire). */
export { RpcFailure, asRpcFailure } from '@pyml/runtime/protocol';

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
