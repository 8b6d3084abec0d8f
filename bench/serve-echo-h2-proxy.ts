/**
 * The other two-hop floor of the serve benchmark: a bare node:http2 server on a Unix socket that pipes each
 * ModelInfer call's HTTP/2 stream (DATA both ways, then the status trailers) to an upstream socket: the echo floor
 * (bench/serve-echo-server.ts), or the image's own server. No gRPC parsing, deadline, metrics or routing: what two
 * hops cost on the transport `pyml serve`'s front is built on (node:http2), next to the grpc-js proxy
 * (bench/serve-echo-proxy.ts).
 * Prints one ready line.
 *
 *   node --import tsx bench/serve-echo-h2-proxy.ts SOCKET UPSTREAM_SOCKET
 */
import http2 from 'node:http2';
import net from 'node:net';

const [socket, upstreamSocket] = process.argv.slice(2);
const upstream = http2.connect('http://localhost', { createConnection: () => net.connect(upstreamSocket) });
const server = http2.createServer();
server.on('stream', (stream, headers) => {
  const call = upstream.request({ ':method': 'POST', ':path': headers[':path'], 'content-type': 'application/grpc', te: 'trailers' });
  stream.pipe(call);
  let trailers: http2.IncomingHttpHeaders = {};
  call.on('response', () => stream.respond({ ':status': 200, 'content-type': 'application/grpc' }, { waitForTrailers: true }));
  call.on('data', (chunk: Buffer) => stream.write(chunk));
  call.on('trailers', (t) => { trailers = t; });
  call.on('end', () => stream.end());
  stream.on('wantTrailers', () => stream.sendTrailers({ 'grpc-status': trailers['grpc-status'] ?? '2', 'grpc-message': trailers['grpc-message'] ?? '' }));
});
server.listen(socket, () => process.stdout.write(`${JSON.stringify({ ready: true, socket })}\n`));
process.on('SIGTERM', () => { upstream.close(); server.close(() => process.exit(0)); });
