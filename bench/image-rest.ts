/**
 * bench/image-rest: V2 REST for iris, one row per request, against three servers started in the same run:
 *   floor        a one-process node:http (HTTP/1.1, keep-alive) + onnxruntime-node server, JSON.parse in, JSON.stringify out
 *   image REST   the image's own entrypoint `serve --http` (one hop: the process that holds the model)
 *   serve REST   `pyml serve IMAGE --http` (two hops: the front, then the model process's socket)
 *
 *   npx tsx bench/image-rest.ts [--seconds 2] [--rounds 3]
 *
 * The targets take turns, round after round, and each cell is the median over the rounds: on a shared machine load
 * from elsewhere comes and goes, and taking turns spreads it over the targets alike. The load average is printed.
 *
 * The load generator is this process (keep-alive http.Agent, `c` loops each with one request in flight), on the same
 * machine as the servers: every target pays for it alike. Each cell warms up for 1 s first. One onnxruntime
 * intra-op thread everywhere (PYML_ORT_THREADS=1, the floor likewise). The last column is the server's CPU time
 * (user + system, its whole process tree, from /proc) per answered request: steadier than req/s on a busy machine.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { Agent, request } from 'node:http';
import { availableParallelism, loadavg, tmpdir } from 'node:os';
import path from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { entrypointCommand, unpackImage } from '@pyml/launcher';

const REPO = fileURLToPath(new URL('../', import.meta.url));
const PYML = path.join(REPO, 'packages/cli/bin/pyml.js');
const MODEL = path.join(REPO, 'examples/onnx-iris/weights/model.onnx');
const { values } = parseArgs({ options: { seconds: { type: 'string', default: '2' }, rounds: { type: 'string', default: '3' } } });
const SECONDS = Number(values.seconds);
const ROUNDS = Number(values.rounds);
process.env.PYML_ORT_THREADS ??= '1';
const BODY = JSON.stringify({ inputs: [{ name: 'input', datatype: 'FP32', shape: [1, 4], data: [5.1, 3.5, 1.4, 0.2] }] });

/** The floor, as a Node user would write it in a few lines. */
const FLOOR = `
import { createServer } from 'node:http';
import * as ort from 'onnxruntime-node';
const session = await ort.InferenceSession.create(${JSON.stringify(MODEL)}, { intraOpNumThreads: Number(process.env.PYML_ORT_THREADS), interOpNumThreads: 1 });
const server = createServer((req, res) => {
  const chunks = [];
  req.on('data', (c) => chunks.push(c));
  req.on('end', async () => {
    try {
      const body = JSON.parse(Buffer.concat(chunks).toString());
      const feeds = {};
      for (const t of body.inputs) feeds[t.name] = new ort.Tensor('float32', Float32Array.from(t.data.flat(Infinity)), t.shape);
      const out = await session.run(feeds);
      const outputs = Object.entries(out).map(([name, t]) => ({ name, datatype: t.type === 'float32' ? 'FP32' : 'INT64', shape: t.dims, data: Array.from(t.data, Number) }));
      const json = JSON.stringify({ model_name: 'iris', model_version: '1.0.0', outputs });
      res.writeHead(200, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(json) }).end(json);
    } catch (error) {
      res.writeHead(400).end(JSON.stringify({ error: String(error.message) }));
    }
  });
});
server.keepAliveTimeout = 65000;
server.listen(0, '127.0.0.1', () => console.log(JSON.stringify({ http: '127.0.0.1:' + server.address().port })));
`;

interface Cell { p50: number; p99: number; rps: number; n: number; errors: number; cpuUs: number }

/** CPU seconds (user + system) a process and its children have used so far, from /proc. */
function cpuSeconds(pid: number): number {
  const tree = [pid];
  for (let i = 0; i < tree.length; i++) {
    try {
      for (const child of readFileSync(`/proc/${tree[i]}/task/${tree[i]}/children`, 'utf8').trim().split(/\s+/)) if (child) tree.push(Number(child));
    } catch { /* gone */ }
  }
  let ticks = 0;
  for (const p of tree) {
    try {
      const fields = readFileSync(`/proc/${p}/stat`, 'utf8').split(') ')[1].split(' ');
      ticks += Number(fields[11]) + Number(fields[12]);
    } catch { /* gone */ }
  }
  return ticks / 100;
}

function client(address: string): () => Promise<void> {
  const i = address.lastIndexOf(':');
  const [host, port] = [address.slice(0, i), Number(address.slice(i + 1))];
  const agent = new Agent({ keepAlive: true, maxSockets: 64 });
  agents.push(agent);
  return () => new Promise((resolve, reject) => {
    const req = request({ host, port, agent, method: 'POST', path: '/v2/models/iris/infer', headers: { 'content-type': 'application/json', 'content-length': Buffer.byteLength(BODY) } }, (res) => {
      res.resume();
      res.on('end', () => (res.statusCode === 200 ? resolve() : reject(new Error(`HTTP ${res.statusCode}`))));
    });
    req.on('error', reject);
    req.end(BODY);
  });
}

/** `concurrency` loops for SECONDS after a 1 s warm-up; latency in µs. */
async function measure(concurrency: number, call: () => Promise<void>, pid: number): Promise<Cell> {
  const warm = Date.now() + 1000;
  await Promise.all(Array.from({ length: concurrency }, async () => { while (Date.now() < warm) await call(); }));
  const lat: number[] = [];
  let errors = 0;
  const end = Date.now() + SECONDS * 1000;
  const start = process.hrtime.bigint();
  const cpuStart = cpuSeconds(pid);
  await Promise.all(Array.from({ length: concurrency }, async () => {
    while (Date.now() < end) {
      const t = process.hrtime.bigint();
      try {
        await call();
        lat.push(Number(process.hrtime.bigint() - t) / 1000);
      } catch {
        errors++;
      }
    }
  }));
  const wall = Number(process.hrtime.bigint() - start) / 1e9;
  const cpuUs = ((cpuSeconds(pid) - cpuStart) * 1e6) / Math.max(1, lat.length);
  lat.sort((a, b) => a - b);
  const q = (p: number) => lat[Math.min(lat.length - 1, Math.floor(p * lat.length))] ?? NaN;
  return { p50: q(0.5), p99: q(0.99), rps: lat.length / wall, n: lat.length, errors, cpuUs };
}

const os = () => `${availableParallelism()}-core`;
const children: ChildProcess[] = [];
const agents: Agent[] = [];

/** Starts a process and resolves with its first stdout line (a JSON ready line). */
function startReady(file: string, args: string[], opts: { env?: NodeJS.ProcessEnv; cwd?: string } = {}): Promise<Record<string, unknown> & { pid: number }> {
  const child = spawn(file, args, { cwd: opts.cwd ?? REPO, env: opts.env ?? process.env, stdio: ['ignore', 'pipe', 'pipe'] });
  children.push(child);
  let err = '';
  child.stderr!.on('data', (d: Buffer) => { err = (err + d.toString()).slice(-4000); });
  return new Promise((resolve, reject) => {
    createInterface({ input: child.stdout! }).once('line', (line) => resolve({ ...(JSON.parse(line) as Record<string, unknown>), pid: child.pid! }));
    child.once('exit', (code) => reject(new Error(`${path.basename(file)} ${args.slice(0, 3).join(' ')} exited with ${code}: ${err}`)));
  });
}

function run(file: string, args: string[]): Promise<void> {
  return new Promise((resolve, reject) => {
    const child = spawn(file, args, { cwd: REPO, stdio: ['ignore', 'ignore', 'pipe'] });
    let err = '';
    child.stderr.on('data', (d: Buffer) => { err += d.toString(); });
    child.on('exit', (code) => (code === 0 ? resolve() : reject(new Error(`${args.join(' ')}: ${err}`))));
  });
}

const dir = await mkdtemp(path.join(tmpdir(), 'pyml-bench-rest-'));
try {
  const image = path.join(dir, 'iris');
  await run(process.execPath, [PYML, 'build', path.join(REPO, 'examples/onnx-iris'), '--out', image, '--json']);
  const unpacked = await unpackImage(image);
  const cmd = entrypointCommand(unpacked, ['serve', '--socket', path.join(dir, 'm.sock'), '--http', '127.0.0.1:0']);
  const started: [string, Record<string, unknown> & { pid: number }][] = [
    ['node:http + onnxruntime-node floor', await startReady(process.execPath, ['--input-type=module', '-e', FLOOR])],
    ['image REST (entrypoint serve --http)', await startReady(cmd.file, cmd.args, { env: cmd.env, cwd: cmd.cwd })],
    ['pyml serve REST', await startReady(process.execPath, [PYML, 'serve', image, '--start', 'eager', '--grpc', '127.0.0.1:0', '--http', '127.0.0.1:0', '--json'])],
  ];
  const targets = started.map(([name, ready]) => [name, String(ready.http)] as const);
  const calls = targets.map(([, address]) => client(address));
  const cells = targets.map(() => ({ one: [] as Cell[], many: [] as Cell[] }));
  const loadBefore = loadavg()[0];
  for (let round = 0; round < ROUNDS; round++) {
    for (let t = 0; t < targets.length; t++) {
      cells[t].one.push(await measure(1, calls[t], started[t][1].pid));
      cells[t].many.push(await measure(32, calls[t], started[t][1].pid));
    }
    console.error(`round ${round + 1}/${ROUNDS} done (load average ${loadavg()[0].toFixed(1)})`);
  }
  const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
  const us = (x: number) => `${(x / 1000).toFixed(3)} ms`;
  const rows = targets.map(([name], t) => {
    const { one, many } = cells[t];
    const m = (cs: Cell[], k: keyof Cell) => median(cs.map((c) => c[k]));
    const errors = [...one, ...many].reduce((n, c) => n + c.errors, 0);
    return `| ${name} | ${us(m(one, 'p50'))} | ${us(m(one, 'p99'))} | ${Math.round(m(one, 'rps'))} | ${us(m(many, 'p50'))} | ${us(m(many, 'p99'))} | ${Math.round(m(many, 'rps'))} | ${Math.round(m(one, 'cpuUs'))} / ${Math.round(m(many, 'cpuUs'))} µs |${errors ? ` ${errors} errors` : ''}`;
  });
  console.log(`iris, one row per request, keep-alive, ${SECONDS} s per cell, median of ${ROUNDS} rounds taken in turns; load generator`);
  console.log(`in-process (Node, same ${os()} machine); load average ${loadBefore.toFixed(1)} before, ${loadavg()[0].toFixed(1)} after\n`);
  console.log('| target | c=1 p50 | c=1 p99 | c=1 req/s | c=32 p50 | c=32 p99 | c=32 req/s | server CPU per request, c=1 / c=32 |');
  console.log('| --- | --- | --- | --- | --- | --- | --- | --- |');
  for (const row of rows) console.log(row);
} finally {
  for (const agent of agents) agent.destroy();
  await Promise.all(children.map((c) => (c.exitCode === null && c.signalCode === null ? new Promise((r) => { c.once('exit', r); c.kill('SIGTERM'); }) : undefined)));
  await rm(dir, { recursive: true, force: true });
}
