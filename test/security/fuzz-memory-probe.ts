/**
 * Measures what one oversized request costs `pyml serve` and its model process (not a test: the figures in the
 * security report come from here). Builds the iris image with the checkout given (default: this one), serves it
 * with default limits, and for each probe, in a fresh service: peak RSS (VmHWM) of both processes before and after,
 * the answer, and the longest a /v2/health/live took meanwhile (how long the event loop was blocked).
 *   node --import tsx test/security/fuzz-memory-probe.ts [REPO]
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { gzipSync } from 'node:zlib';
import { grpcFrame, rawHttp2Call, rest } from './fuzz-clients.ts';

const repo = resolve(process.argv[2] ?? '.');
const work = mkdtempSync(join(tmpdir(), 'pyml-memory-probe-'));
const env = { ...process.env, PYML_CACHE_DIR: join(work, 'cache'), NO_COLOR: '1' };
const cli = join(repo, 'packages/cli/bin/pyml.js');

function kb(pid: number, field: 'VmRSS' | 'VmHWM'): number {
  return Number(new RegExp(`${field}:\\s+(\\d+) kB`).exec(readFileSync(`/proc/${pid}/status`, 'utf8'))![1]);
}

function run(args: string[]): Promise<void> {
  return new Promise((done, fail) => {
    const child = spawn(process.execPath, [cli, ...args], { cwd: repo, env, stdio: ['ignore', 'ignore', 'inherit'] });
    child.on('exit', (code) => (code === 0 ? done() : fail(new Error(`pyml ${args[0]} exited with ${code}`))));
  });
}

interface Service { child: ChildProcess; pid: number; modelPid: number; http: string; grpc: string }

function serve(image: string): Promise<Service> {
  const child = spawn(process.execPath, [cli, 'serve', image, '--start', 'eager', '--grpc', '127.0.0.1:0', '--http', '127.0.0.1:0', '--json'], { cwd: repo, env, stdio: ['ignore', 'pipe', 'inherit'] });
  return new Promise((done) => {
    let out = '';
    child.stdout!.on('data', (c: Buffer) => {
      out += c;
      if (!out.includes('\n')) return;
      const ready = JSON.parse(out.slice(0, out.indexOf('\n')));
      done({ child, pid: ready.pid, modelPid: ready.models[0].pid, http: ready.http, grpc: ready.grpc });
    });
  });
}

/** Polls /v2/health/live every 10 ms while `work` runs; the slowest answer is how long the event loop stalled. */
async function withLiveness<T>(s: Service, work: Promise<T>): Promise<[T, number]> {
  let slowest = 0;
  let running = true;
  const poll = (async () => {
    while (running) {
      const r = await rest(s.http, 'GET', '/v2/health/live');
      slowest = Math.max(slowest, r.ms);
      await new Promise((r) => setTimeout(r, 10));
    }
  })();
  const value = await work;
  running = false;
  await poll;
  return [value, slowest];
}

async function probe(image: string, name: string, send: (s: Service) => Promise<string>): Promise<void> {
  const s = await serve(image);
  await new Promise((r) => setTimeout(r, 500));
  const before = { serve: kb(s.pid, 'VmRSS'), model: kb(s.modelPid, 'VmRSS') };
  const started = Date.now();
  const [answer, stall] = await withLiveness(s, send(s));
  const ms = Date.now() - started;
  const peak = { serve: kb(s.pid, 'VmHWM'), model: kb(s.modelPid, 'VmHWM') };
  const mb = (k: number) => `${(k / 1024).toFixed(0)} MB`;
  console.log(`${name}: ${answer.slice(0, 120)} in ${ms} ms; serve RSS ${mb(before.serve)} -> peak ${mb(peak.serve)}; model RSS ${mb(before.model)} -> peak ${mb(peak.model)}; slowest /v2/health/live meanwhile ${stall} ms`);
  s.child.kill('SIGTERM');
  await new Promise((r) => s.child.once('exit', r));
}

await run(['build', join(repo, 'examples/onnx-iris'), '--out', join(work, 'iris'), '--json']);
const image = join(work, 'iris');
const zeros = Buffer.from(`{"inputs":[{"name":"input","datatype":"FP32","shape":[3000000,4],"data":[${'0,'.repeat(12_000_000 - 1)}0]}]}`);
await probe(image, `REST body of ${(zeros.length / 1e6).toFixed(0)} MB of zeros`, async (s) => {
  const r = await rest(s.http, 'POST', '/v2/models/iris/infer', zeros);
  return `${r.status} ${r.text.slice(0, 100)}`;
});
const mismatched = Buffer.from(`{"inputs":[{"name":"input","datatype":"FP32","shape":[1,4],"data":[${'0,'.repeat(12_000_000 - 1)}0]}]}`);
await probe(image, `REST body of ${(mismatched.length / 1e6).toFixed(0)} MB of zeros, shape [1, 4]`, async (s) => {
  const r = await rest(s.http, 'POST', '/v2/models/iris/infer', mismatched);
  return `${r.status} ${r.text.slice(0, 100)}`;
});
for (const size of [60e6, 1e9]) {
  const bomb = gzipSync(Buffer.alloc(size));
  await probe(image, `gRPC gzip bomb ${(bomb.length / 1e3).toFixed(0)} KB -> ${(size / 1e6).toFixed(0)} MB`, async (s) => {
    const r = await rawHttp2Call(s.grpc, '/inference.GRPCInferenceService/ModelInfer', { headers: { 'grpc-encoding': 'gzip', 'grpc-timeout': '20S' }, data: grpcFrame(bomb, true), endStream: true, giveUpMs: 30_000 });
    return `grpc-status ${r.grpcStatus} ${r.grpcMessage ?? ''}`;
  });
}
rmSync(work, { recursive: true, force: true });
