/**
 * The floor of the serve benchmark: a bare @grpc/grpc-js unary server on a Unix socket whose ModelInfer answers
 * with the request's own bytes, identity codec both ways (no protobuf work at all). Channelz off, as in the servers
 * it is the floor for (the runtime's and `pyml serve`'s): an option that makes grpc-js cheaper lowers the floor too.
 * Prints one ready line.
 *
 *   node --import tsx bench/serve-echo-server.ts SOCKET
 */
import { Server, ServerCredentials, type sendUnaryData, type ServerUnaryCall } from '@grpc/grpc-js';

const identity = (b: Buffer): Buffer => b;
const socket = process.argv[2];
const server = new Server({ 'grpc.enable_channelz': 0 });
server.addService({
  ModelInfer: {
    path: '/inference.GRPCInferenceService/ModelInfer', requestStream: false, responseStream: false,
    requestSerialize: identity, requestDeserialize: identity, responseSerialize: identity, responseDeserialize: identity,
  },
}, { ModelInfer: (call: ServerUnaryCall<Buffer, Buffer>, cb: sendUnaryData<Buffer>) => cb(null, call.request) });
server.bindAsync(`unix:${socket}`, ServerCredentials.createInsecure(), (error) => {
  if (error) throw error;
  process.stdout.write(`${JSON.stringify({ ready: true, socket })}\n`);
});
process.on('SIGTERM', () => server.tryShutdown(() => process.exit(0)));
