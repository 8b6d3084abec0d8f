/**
 * The two-hop floor of the serve benchmark: a bare @grpc/grpc-js unary server on a Unix socket that forwards each
 * ModelInfer's bytes to the echo floor (bench/serve-echo-server.ts) with a stock grpc-js client and answers with
 * the echo's reply. Identity codecs, channelz off, no deadline, no metrics, no routing: what two grpc-js hops cost
 * on this machine, next to which `pyml serve` (which adds routing, limits, deadline and metrics) is measured.
 * Prints one ready line.
 *
 *   node --import tsx bench/serve-echo-proxy.ts SOCKET UPSTREAM_SOCKET
 */
import { Client, Metadata, Server, ServerCredentials, credentials, type sendUnaryData, type ServerUnaryCall } from '@grpc/grpc-js';

const identity = (b: Buffer): Buffer => b;
const [socket, upstream] = process.argv.slice(2);
const PATH = '/inference.GRPCInferenceService/ModelInfer';
const client = new Client(`unix:${upstream}`, credentials.createInsecure(), { 'grpc.enable_channelz': 0 });
const server = new Server({ 'grpc.enable_channelz': 0 });
server.addService({
  ModelInfer: {
    path: PATH, requestStream: false, responseStream: false,
    requestSerialize: identity, requestDeserialize: identity, responseSerialize: identity, responseDeserialize: identity,
  },
}, {
  ModelInfer: (call: ServerUnaryCall<Buffer, Buffer>, cb: sendUnaryData<Buffer>) => {
    client.makeUnaryRequest(PATH, identity, identity, call.request, new Metadata(), {}, (error, reply) => (error ? cb(error) : cb(null, reply!)));
  },
});
server.bindAsync(`unix:${socket}`, ServerCredentials.createInsecure(), (error) => {
  if (error) throw error;
  process.stdout.write(`${JSON.stringify({ ready: true, socket })}\n`);
});
process.on('SIGTERM', () => { client.close(); server.tryShutdown(() => process.exit(0)); });
