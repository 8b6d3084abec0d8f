/**
 * bench/peers' load generator for the targets wrk cannot drive: gRPC always, HTTP when wrk is not installed. One
 * process, `concurrency` closed loops (each sends its next request when the previous answer is in), keep-alive,
 * after a warm-up of its own (this process's JIT and connections), latency by process.hrtime per request.
 *
 *   node --import tsx bench/peers/load.ts http  URL             BODY.json   CONCURRENCY SECONDS
 *   node --import tsx bench/peers/load.ts grpc|grpc-js  HOST:PORT|unix:PATH REQUEST.bin CONCURRENCY SECONDS
 *
 * gRPC: REQUEST.bin is an encoded inference.ModelInferRequest, sent as it is to /inference.GRPCInferenceService/
 * ModelInfer (what is measured is the server, not protobuf in this process): `grpc` on one node:http2 session,
 * `grpc-js` through one @grpc/grpc-js client with identity serialisers.
 * Prints one JSON line: { n, errors, p50, p99 (µs), rps, clientCpuUs (this process's CPU per call), firstError? }.
 */
import { readFileSync } from 'node:fs';
import { Agent, request } from 'node:http';
import http2 from 'node:http2';
import { connect } from 'node:net';
import { Client, Metadata, credentials } from '@grpc/grpc-js';

const [mode, target, file, c, s] = process.argv.slice(2);
const concurrency = Number(c);
const seconds = Number(s);
const body = readFileSync(file);
const MAX_REQUESTS = 2_000_000;
const WARM_UP_MS = 500;

function httpCall(url: URL): () => Promise<void> {
  const agent = new Agent({ keepAlive: true, maxSockets: concurrency });
  const headers = { 'content-type': 'application/json', 'content-length': body.length };
  return () => new Promise((resolve, reject) => {
    const req = request({ host: url.hostname, port: url.port, path: url.pathname, method: 'POST', agent, headers }, (res) => {
      res.resume();
      res.on('end', () => (res.statusCode === 200 ? resolve() : reject(new Error(`HTTP ${res.statusCode}`))));
    });
    req.on('error', reject);
    req.end(body);
  });
}

function grpcCall(address: string): () => Promise<void> {
  const client = new Client(address, credentials.createInsecure(), { 'grpc.max_receive_message_length': -1 });
  const identity = (b: Buffer): Buffer => b;
  return () => new Promise((resolve, reject) => {
    client.makeUnaryRequest('/inference.GRPCInferenceService/ModelInfer', identity, identity, body, new Metadata(), {}, (error, answer) => {
      if (error) reject(error);
      else if (!answer?.length) reject(new Error('empty ModelInferResponse'));
      else resolve();
    });
  });
}

/**
 * gRPC on one node:http2 session, as lean as a client gets in Node (what h2load is to wrk): the framed request, and
 * an answer counted only with a message and grpc-status 0 in its trailers (or trailers-only headers).
 */
function h2GrpcCall(address: string): () => Promise<void> {
  // TCP_NODELAY, as grpc-js sets it: with Nagle's algorithm, 32 calls' small frames on one connection wait for ACKs.
  const unix = address.startsWith('unix:') ? address.slice(5) : undefined;
  const at = unix ? undefined : /^\[?([^\]]*)\]?:(\d+)$/.exec(address);
  const session = http2.connect('http://localhost', {
    createConnection: () => (unix ? connect(unix) : connect({ host: at![1], port: Number(at![2]), noDelay: true })),
  });
  session.on('error', () => {});
  const framed = Buffer.allocUnsafe(5 + body.length);
  framed[0] = 0;
  framed.writeUInt32BE(body.length, 1);
  body.copy(framed, 5);
  const headers = { ':method': 'POST', ':path': '/inference.GRPCInferenceService/ModelInfer', 'content-type': 'application/grpc', te: 'trailers' };
  return () => new Promise((resolve, reject) => {
    const stream = session.request(headers);
    let bytes = 0;
    let code: string | undefined;
    stream.on('response', (h) => { if (h['grpc-status'] !== undefined) code = String(h['grpc-status']); });
    stream.on('trailers', (h) => { code = String(h['grpc-status']); });
    stream.on('data', (chunk: Buffer) => { bytes += chunk.length; });
    stream.on('error', reject);
    stream.on('close', () => (code === '0' && bytes > 5 ? resolve() : reject(new Error(`grpc-status ${code ?? 'none'}, ${bytes} bytes`))));
    stream.end(framed);
  });
}

if (mode !== 'grpc' && mode !== 'grpc-js' && mode !== 'http') throw new Error(`mode must be http, grpc or grpc-js, not ${mode}`);
const call = mode === 'grpc' ? h2GrpcCall(target) : mode === 'grpc-js' ? grpcCall(target) : httpCall(new URL(target));

async function loops(until: number, onDone: (us: number) => void, onError: (e: unknown) => void, count: () => number): Promise<void> {
  await Promise.all(Array.from({ length: concurrency }, async () => {
    while (Date.now() < until && count() < MAX_REQUESTS) {
      const t = process.hrtime.bigint();
      try {
        await call();
        onDone(Number(process.hrtime.bigint() - t) / 1000);
      } catch (error) {
        onError(error);
      }
    }
  }));
}

let warm = 0;
await loops(Date.now() + WARM_UP_MS, () => warm++, () => warm++, () => warm);
const latencies: number[] = [];
let errors = 0;
let firstError: string | undefined;
const started = process.hrtime.bigint();
const cpuBefore = process.cpuUsage();
await loops(Date.now() + seconds * 1000, (us) => latencies.push(us), (e) => { errors++; firstError ??= (e as Error).message; }, () => latencies.length + errors);
const wall = Number(process.hrtime.bigint() - started) / 1e9;
const cpu = process.cpuUsage(cpuBefore);
latencies.sort((a, b) => a - b);
const q = (p: number) => latencies[Math.min(latencies.length - 1, Math.floor(p * latencies.length))] ?? NaN;
console.log(JSON.stringify({ n: latencies.length, errors, p50: q(0.5), p99: q(0.99), rps: latencies.length / wall, clientCpuUs: (cpu.user + cpu.system) / Math.max(1, latencies.length + errors), firstError }));
process.exit(0);
