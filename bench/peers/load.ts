/**
 * bench/peers' load generator for the targets wrk cannot drive: gRPC always, HTTP when wrk is not installed. One
 * process, `concurrency` closed loops (each sends its next request when the previous answer is in), keep-alive,
 * after a warm-up of its own (this process's JIT and connections), latency by process.hrtime per request.
 *
 *   node --import tsx bench/peers/load.ts http  URL             BODY.json   CONCURRENCY SECONDS
 *   node --import tsx bench/peers/load.ts grpc  HOST:PORT|unix: REQUEST.bin CONCURRENCY SECONDS
 *
 * gRPC: REQUEST.bin is an encoded inference.ModelInferRequest, sent as it is to /inference.GRPCInferenceService/
 * ModelInfer (identity serialisers: what is measured is the server, not protobuf in this process).
 * Prints one JSON line: { n, errors, p50, p99 (µs), rps, firstError? }.
 */
import { readFileSync } from 'node:fs';
import { Agent, request } from 'node:http';
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

if (mode !== 'grpc' && mode !== 'http') throw new Error(`mode must be http or grpc, not ${mode}`);
const call = mode === 'grpc' ? grpcCall(target) : httpCall(new URL(target));

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
await loops(Date.now() + seconds * 1000, (us) => latencies.push(us), (e) => { errors++; firstError ??= (e as Error).message; }, () => latencies.length + errors);
const wall = Number(process.hrtime.bigint() - started) / 1e9;
latencies.sort((a, b) => a - b);
const q = (p: number) => latencies[Math.min(latencies.length - 1, Math.floor(p * latencies.length))] ?? NaN;
console.log(JSON.stringify({ n: latencies.length, errors, p50: q(0.5), p99: q(0.99), rps: latencies.length / wall, firstError }));
process.exit(0);
