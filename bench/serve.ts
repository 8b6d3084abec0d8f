/**
 * bench/serve: online prediction latency and throughput, every figure next to the floor measured in the same run.
 *
 *   npx tsx bench/serve.ts [--seconds 2] [--only iris|batching]
 *
 * Rows (one iris row per request, concurrency 1 and 32, p50/p99 latency and requests/s):
 *   in-process      onnxruntime-node session.run in this process (no RPC at all)
 *   floor           a bare grpc-js unary echo over a Unix socket, identity codec, in another process; it gets every
 *                   grpc-js option our servers use to be cheaper (channelz off), so the ratios are our own overhead
 *   two-hop floors  a bare forwarding proxy in front of that echo, Unix sockets: grpc-js (identity codecs, stock
 *                   client), and node:http2 piping the call's stream (the transport `pyml serve`'s front uses): the
 *                   least two hops cost here (informational; ratios stay to the floor)
 *   image server    the image's own entrypoint `serve` (the runtime's OIP server) over its Unix socket
 *   http2 proxy → image server   that bare node:http2 proxy in front of the image's server: two hops with the real
 *                   model and nothing of `pyml serve` (routing, deadlines, limits, metrics): its structural floor
 *   serve gRPC      `pyml serve` (TCP 127.0.0.1, and a Unix socket) → the model's Unix socket: two hops
 *   serve HTTP      `pyml serve` V2 REST/JSON, keep-alive
 * (`pyml serve` starts its models eagerly here: the figures are steady state, not the first call's on-demand start.)
 * Ratios are to the floor at the same concurrency. Then batching: a wide MLP through `pyml serve` gRPC with
 * adaptive batching off and on, at concurrency 32. Each cell is bounded in time and count; the script stops
 * everything it started and exits.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { cp, mkdtemp, rm, symlink } from 'node:fs/promises';
import { Agent, request as httpRequest } from 'node:http';
import { loadavg, tmpdir } from 'node:os';
import path from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { Client, Metadata, credentials } from '@grpc/grpc-js';
import { encodeInferRequest } from '@pyml/runtime/protocol';
import { EmbeddedRunner } from '@pyml/serve';
import { unpackImage } from '@pyml/launcher';
import * as ort from 'onnxruntime-node';
import { writeWideMlp } from './serve-wide-mlp.ts';

const REPO = fileURLToPath(new URL('../', import.meta.url));
const PYML = path.join(REPO, 'packages/cli/bin/pyml.js');
const { values } = parseArgs({ options: { seconds: { type: 'string', default: '2' }, only: { type: 'string' } } });
const SECONDS = Number(values.seconds);
// --only iris | batching: one half of the bench, to repeat it.
const ONLY = values.only;
if (ONLY !== undefined && ONLY !== 'iris' && ONLY !== 'batching') throw new Error(`--only must be iris or batching, got '${ONLY}'`);
const MAX_REQUESTS = 200_000;
// One row costs about 1 ms in-process on this kind of machine (W1 is 24 MiB: memory-bound), as the issue asks.
const WIDE = { inputs: 1024, hidden: 6144, outputs: 16 };
// One intra-op thread everywhere (in-process and in the images, via the onnx adapter's PYML_ORT_THREADS): on a
// shared 2-core machine onnxruntime's spinning thread pool otherwise dominates what is measured.
process.env.PYML_ORT_THREADS ??= '1';
const ORT_OPTIONS = { intraOpNumThreads: Number(process.env.PYML_ORT_THREADS), interOpNumThreads: 1 };

interface Cell { name: string; concurrency: number; p50: number; p99: number; rps: number; n: number; errors: number }

/** Runs `call` from `concurrency` loops for SECONDS (after a 1 s warm-up, so JIT and connections are settled); latency in µs. */
async function measure(name: string, concurrency: number, call: () => Promise<unknown>, seconds = SECONDS): Promise<Cell> {
  const warmUntil = Date.now() + 1000;
  await Promise.all(Array.from({ length: concurrency }, async () => { while (Date.now() < warmUntil) await call(); }));
  const lat: number[] = [];
  let errors = 0;
  let firstError: unknown;
  const end = Date.now() + seconds * 1000;
  const started = process.hrtime.bigint();
  await Promise.all(Array.from({ length: concurrency }, async () => {
    while (Date.now() < end && lat.length + errors < MAX_REQUESTS) {
      const t = process.hrtime.bigint();
      try {
        await call();
        lat.push(Number(process.hrtime.bigint() - t) / 1000);
      } catch (error) {
        errors++;
        firstError ??= error;
      }
    }
  }));
  const wall = Number(process.hrtime.bigint() - started) / 1e9;
  if (errors) console.error(`${name} c=${concurrency}: ${errors} errors, first: ${(firstError as Error).message}`);
  lat.sort((a, b) => a - b);
  const q = (p: number) => lat[Math.min(lat.length - 1, Math.floor(p * lat.length))] ?? NaN;
  return { name, concurrency, p50: q(0.5), p99: q(0.99), rps: lat.length / wall, n: lat.length, errors };
}

const identity = (b: Buffer): Buffer => b;
function rawClient(address: string): (bytes: Buffer) => Promise<Buffer> {
  const client = new Client(address, credentials.createInsecure(), { 'grpc.max_receive_message_length': -1 });
  clients.push(client);
  return (bytes) => new Promise((resolve, reject) => {
    client.makeUnaryRequest('/inference.GRPCInferenceService/ModelInfer', identity, identity, bytes, new Metadata(), {}, (e, r) => (e ? reject(e) : resolve(r!)));
  });
}

function httpClient(address: string, model: string, body: string): () => Promise<void> {
  const [host, port] = [address.slice(0, address.lastIndexOf(':')), Number(address.slice(address.lastIndexOf(':') + 1))];
  const agent = new Agent({ keepAlive: true, maxSockets: 64 });
  agents.push(agent);
  return () => new Promise((resolve, reject) => {
    const req = httpRequest({ host, port, agent, method: 'POST', path: `/v2/models/${model}/infer`, headers: { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) } }, (res) => {
      res.resume();
      res.on('end', () => (res.statusCode === 200 ? resolve() : reject(new Error(`HTTP ${res.statusCode}`))));
    });
    req.on('error', reject);
    req.end(body);
  });
}

const children: ChildProcess[] = [];
const clients: Client[] = [];
const agents: Agent[] = [];
const stops: (() => Promise<void>)[] = [];

/** Starts a process and waits for its first stdout line (a JSON ready line). */
function startReady(cmd: string, args: string[], env: Record<string, string> = {}): Promise<Record<string, unknown>> {
  const child = spawn(cmd, args, { cwd: REPO, env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
  children.push(child);
  let err = '';
  child.stderr!.on('data', (d: Buffer) => { err = (err + d.toString()).slice(-4000); });
  return new Promise((resolve, reject) => {
    createInterface({ input: child.stdout! }).once('line', (line) => resolve(JSON.parse(line) as Record<string, unknown>));
    child.once('exit', (code) => reject(new Error(`${args.join(' ')} exited with ${code}: ${err}`)));
  });
}

function pyml(args: string[]): Promise<void> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [PYML, ...args], { cwd: REPO, stdio: ['ignore', 'ignore', 'pipe'] });
    let err = '';
    child.stderr.on('data', (d: Buffer) => { err += d.toString(); });
    child.on('exit', (code) => (code === 0 ? resolve() : reject(new Error(`pyml ${args.join(' ')}: ${err}`))));
  });
}

async function main(): Promise<void> {
  const work = await mkdtemp(path.join(tmpdir(), 'pyml-bench-serve-'));
  stops.push(() => rm(work, { recursive: true, force: true }));
  // Images: iris, and the wide MLP as a copy of the iris project with other weights.
  const wideProject = path.join(work, 'wide');
  await cp(path.join(REPO, 'examples/onnx-iris'), wideProject, { recursive: true, filter: (s) => !s.includes(`${path.sep}.pyml`) });
  await symlink(path.join(REPO, 'node_modules'), path.join(wideProject, 'node_modules'));
  await writeWideMlp(path.join(wideProject, 'weights/model.onnx'), WIDE);
  const { readFile, writeFile } = await import('node:fs/promises');
  const cfg = path.join(wideProject, 'pyml.config.ts');
  await writeFile(cfg, (await readFile(cfg, 'utf8')).replace("name: 'iris'", "name: 'wide'"));
  await pyml(['build', 'examples/onnx-iris', '--out', path.join(work, 'iris')]);
  await pyml(['build', wideProject, '--out', path.join(work, 'wide-image')]);

  if (ONLY !== 'batching') await irisCells(work);
  if (ONLY !== 'iris') await batchingCells(work, wideProject);
}

const us = (v: number) => (v >= 10_000 ? `${(v / 1000).toFixed(1)} ms` : `${v.toFixed(0)} µs`);
const line = (x: Cell, base?: Cell) => `${x.name.padEnd(30)} c=${String(x.concurrency).padEnd(3)} p50 ${us(x.p50).padStart(9)}  p99 ${us(x.p99).padStart(9)}  ${x.rps.toFixed(0).padStart(6)} req/s` +
  (base ? `   p50 ×${(x.p50 / base.p50).toFixed(2)}  p99 ×${(x.p99 / base.p99).toFixed(2)}  req/s ×${(x.rps / base.rps).toFixed(2)}` : '') + (x.errors ? `  (${x.errors} errors)` : '');

/** One iris row per request: in-process, the floors, the image's server, `pyml serve` gRPC and HTTP. */
async function irisCells(work: string): Promise<void> {
  const row = Float32Array.from([5.1, 3.5, 1.4, 0.2]);
  const irisBytes = encodeInferRequest({ modelName: 'iris', inputs: [{ name: 'input', tensor: { dtype: 'FP32', shape: [1, 4], data: row } }], raw: true });
  const irisJson = JSON.stringify({ inputs: [{ name: 'input', datatype: 'FP32', shape: [1, 4], data: Array.from(row) }] });
  const cells: Cell[] = [];

  // In-process onnxruntime-node, default session options (as the image's adapter).
  const session = await ort.InferenceSession.create(path.join(REPO, 'examples/onnx-iris/weights/model.onnx'), ORT_OPTIONS);
  for (const c of [1, 32]) cells.push(await measure('in-process onnxruntime', c, () => session.run({ input: new ort.Tensor('float32', row, [1, 4]) })));

  // The floor: bare grpc-js echo in another process over a Unix socket.
  const echoSocket = path.join(work, 'echo.sock');
  await startReady(process.execPath, ['--import', 'tsx', path.join(REPO, 'bench/serve-echo-server.ts'), echoSocket]);
  const echo = rawClient(`unix:${echoSocket}`);
  for (const c of [1, 32]) cells.push(await measure('floor: grpc-js echo (unix)', c, () => echo(irisBytes)));
  // Two bare grpc-js hops (a forwarding proxy in front of the echo): what `pyml serve`'s two hops cost at least.
  const proxySocket = path.join(work, 'echo-proxy.sock');
  await startReady(process.execPath, ['--import', 'tsx', path.join(REPO, 'bench/serve-echo-proxy.ts'), proxySocket, echoSocket]);
  const proxied = rawClient(`unix:${proxySocket}`);
  for (const c of [1, 32]) cells.push(await measure('two-hop floor: grpc-js proxy', c, () => proxied(irisBytes)));
  // The same two hops with a bare node:http2 proxy: the transport `pyml serve`'s front forwards on.
  const h2ProxySocket = path.join(work, 'echo-h2-proxy.sock');
  await startReady(process.execPath, ['--import', 'tsx', path.join(REPO, 'bench/serve-echo-h2-proxy.ts'), h2ProxySocket, echoSocket]);
  const h2Proxied = rawClient(`unix:${h2ProxySocket}`);
  for (const c of [1, 32]) cells.push(await measure('two-hop floor: http2 proxy', c, () => h2Proxied(irisBytes)));

  // The image's server, started the way `pyml serve` starts it, over its Unix socket.
  const image = await unpackImage(path.join(work, 'iris'));
  const proc = await new EmbeddedRunner().start({ name: 'iris', image, socket: path.join(work, 'iris.sock'), env: {}, onLog: () => {}, startTimeoutMs: 60_000 });
  stops.push(() => proc.stop(5000));
  const direct = rawClient(`unix:${proc.socket}`);
  for (const c of [1, 32]) cells.push(await measure('image server (unix)', c, () => direct(irisBytes)));
  // The same bare node:http2 proxy in front of the image's server: the least any two-hop service costs with this
  // model here, before routing, deadlines, limits and metrics (what `pyml serve` adds is its row minus this one).
  const modelProxySocket = path.join(work, 'model-h2-proxy.sock');
  await startReady(process.execPath, ['--import', 'tsx', path.join(REPO, 'bench/serve-echo-h2-proxy.ts'), modelProxySocket, proc.socket]);
  const modelProxied = rawClient(`unix:${modelProxySocket}`);
  for (const c of [1, 32]) cells.push(await measure('http2 proxy → image server', c, () => modelProxied(irisBytes)));
  children.at(-1)!.kill('SIGTERM');
  await proc.stop(5000);

  // pyml serve, gRPC and HTTP.
  const served = await startReady(process.execPath, [PYML, 'serve', path.join(work, 'iris'), '--grpc', '127.0.0.1:0', '--http', '127.0.0.1:0', '--json', '--start', 'eager', '--max-concurrency', '256', '--access-log', 'off']);
  const viaServe = rawClient(String(served.grpc));
  for (const c of [1, 32]) cells.push(await measure('pyml serve gRPC (tcp)', c, () => viaServe(irisBytes)));
  children.at(-1)!.kill('SIGTERM');
  const servedUnix = await startReady(process.execPath, [PYML, 'serve', path.join(work, 'iris'), '--grpc', `unix:${path.join(work, 'front.sock')}`, '--http', '127.0.0.1:0', '--json', '--start', 'eager', '--max-concurrency', '256', '--access-log', 'off']);
  const viaServeUnix = rawClient(String(servedUnix.grpc));
  for (const c of [1, 32]) cells.push(await measure('pyml serve gRPC (unix)', c, () => viaServeUnix(irisBytes)));
  const viaHttp = httpClient(String(servedUnix.http), 'iris', irisJson);
  for (const c of [1, 32]) cells.push(await measure('pyml serve HTTP (json)', c, viaHttp));
  children.at(-1)!.kill('SIGTERM');

  const floor = (c: number) => cells.find((x) => x.name.startsWith('floor') && x.concurrency === c)!;
  console.log(`\nbench/serve: iris, 1 row per request, ${SECONDS} s per cell, PYML_ORT_THREADS=${process.env.PYML_ORT_THREADS}; load average ${loadavg().map((l) => l.toFixed(1)).join(' ')}; ratios to the floor at the same concurrency`);
  for (const x of cells) console.log(line(x, floor(x.concurrency)));
}

/** Batching on a wide MLP: off vs on, through pyml serve gRPC. */
async function batchingCells(work: string, wideProject: string): Promise<void> {
  const wideRow = new Float32Array(WIDE.inputs).map((_, i) => Math.sin(i));
  const wideBytes = encodeInferRequest({ modelName: 'wide', inputs: [{ name: 'input', tensor: { dtype: 'FP32', shape: [1, WIDE.inputs], data: wideRow } }], raw: true });
  const wideSession = await ort.InferenceSession.create(path.join(wideProject, 'weights/model.onnx'), ORT_OPTIONS);
  const single = await measure('wide MLP in-process', 1, () => wideSession.run({ input: new ort.Tensor('float32', wideRow, [1, WIDE.inputs]) }));
  const batch: Cell[] = [];
  const rowsPerCall: string[] = [];
  const delayMs = process.env.PYML_BENCH_BATCH_DELAY_MS ?? '2';
  for (const [label, flags] of [['batching off', ['--max-batch-size', '1']], [`batching on (32 rows, ${delayMs} ms)`, ['--max-batch-size', '32', '--max-batch-delay-ms', delayMs]]] as const) {
    const s = await startReady(process.execPath, [PYML, 'serve', path.join(work, 'wide-image'), '--grpc', '127.0.0.1:0', '--http', '127.0.0.1:0', '--json', '--start', 'eager', '--max-concurrency', '256', '--access-log', 'off', ...flags]);
    const client = rawClient(String(s.grpc));
    for (const c of [1, 32]) {
      const before = await batchRows(String(s.http));
      batch.push(await measure(`wide MLP, ${label}`, c, () => client(wideBytes)));
      const after = await batchRows(String(s.http));
      if (after.calls > before.calls) rowsPerCall.push(`${label} c=${c}: ${((after.rows - before.rows) / (after.calls - before.calls)).toFixed(1)} rows per model call`);
    }
    children.at(-1)!.kill('SIGTERM');
  }
  console.log(`\nbatching: wide MLP [1,${WIDE.inputs}]→${WIDE.hidden}→${WIDE.outputs} via pyml serve gRPC; one row in-process: p50 ${us(single.p50)}; ratios to batching off at the same concurrency`);
  for (const x of batch) console.log(line(x, batch.find((b) => b.name.includes('off') && b.concurrency === x.concurrency)));
  console.log(rowsPerCall.join('; '));
}

/** The service's pyml_batch_rows histogram so far: merged calls and the rows in them. */
async function batchRows(http: string): Promise<{ calls: number; rows: number }> {
  const text = await (await fetch(`http://${http}/metrics`)).text();
  const value = (name: string) => Number(new RegExp(`^${name}\\{[^}]*\\} (\\S+)$`, 'm').exec(text)?.[1] ?? 0);
  return { calls: value('pyml_batch_rows_count'), rows: value('pyml_batch_rows_sum') };
}

try {
  await main();
} finally {
  for (const c of clients) c.close();
  for (const a of agents) a.destroy();
  for (const c of children) if (c.exitCode === null) c.kill('SIGTERM');
  for (const stop of stops.reverse()) await stop().catch(() => {});
  await new Promise((r) => setTimeout(r, 300));
}
