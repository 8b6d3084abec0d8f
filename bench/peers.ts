/**
 * bench/peers: pyml against the servers and scripts a user would write instead, all measured in one run on this
 * machine (issue 20, "Must have" 5), printed as one table with the issue's aims next to the figures.
 *
 *   npx tsx bench/peers.ts [--seconds 5] [--only serve|batch] [--rows 1000000] [--rounds 1]
 *
 * Serve (iris ONNX MLP, one row per request; each server launched, timed to its first answer, loaded, measured, stopped):
 *   FastAPI + uvicorn + onnxruntime, 1 and 2 workers       bench/peers/fastapi_server.py   (the ratios' base for REST)
 *   node:http + onnxruntime-node, one process              bench/peers/node-floor.mjs      (the floor)
 *   the same over two processes (a front, a framed hop)     bench/peers/two-hop-floor.mjs   (the floor of pyml serve's shape)
 *   pyml serve REST, pyml serve gRPC                        pyml serve bundled as \`pyml deploy serve-image\` ships it
 *                                                           (packages/cli/src/serve-front.ts, esbuild): compiled
 *                                                           JavaScript as installed pyml runs, no tsx at run time
 *   the image's own REST (--http) and gRPC (--tcp)          the image's entrypoint on its unpacked rootfs
 *   grpcio asyncio V2 server                                bench/peers/grpc_server.py      (the ratios' base for gRPC)
 *   node:http2 + onnxruntime-node gRPC, one process         bench/peers/grpc-floor.mjs      (node:http2's own cost)
 * HTTP load: wrk (C, keep-alive, POST body from a Lua script) when installed, else bench/peers/load.ts; gRPC load:
 * bench/peers/load.ts grpc (one node:http2 session, the same framed ModelInferRequest for every target, an answer
 * counted only with a message and grpc-status 0): as lean as a Node client gets, so the server is what is measured
 * (grpc-js's client took 2.5-3x its CPU per call, load.ts's clientCpuUs, and that was in every gRPC row's latency).
 * The first answer (cold start) comes from a @grpc/grpc-js client: every gRPC target also answers a real library.
 * Each target: warm-up at c=32, then c=1 and c=32 for --seconds each (p50, p99, req/s); cold start is launch to
 * the first successful answer; RSS is the whole process tree's (VmRSS summed) after the load.
 * onnxruntime gets one intra-op thread in every server (PYML_ORT_THREADS=1, PEER_ORT_THREADS=1), as bench/serve.
 *
 * Batch (--rows rows, Parquet → Parquet; iris, and the wide tabular MLP of bench/batch-wide-mlp.ts): pyml batch
 * (--out DIR --format parquet, its default workers; compiled, as installed pyml runs: dist/ built by tsc -b) against
 * bench/peers/batch_pyarrow.py and batch_pandas.py (onnxruntime's default threads, as a user runs them): wall,
 * CPU seconds of the whole tree (the shell's `times` after the command), peak RSS of the tree (sampled every 20 ms),
 * and pyml's own account from its --json: CPU before the run, CPU per batch in the front and in the model processes.
 *
 * Python comes from a venv under bench/.work/peers/venv, made once (a marker file holds what it was made with)
 * from the machine's local wheel mirror as `pip config list` names it; nothing is downloaded from anywhere else.
 * Everything it starts is stopped by pid (the process tree) at the end, on error and on Ctrl-C; servers bind port 0
 * on 127.0.0.1 or Unix sockets in one temp dir, which is removed at the end.
 */
import { type ChildProcess, spawn, spawnSync } from 'node:child_process';
import { existsSync, readFileSync, readdirSync } from 'node:fs';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { request as httpRequest } from 'node:http';
import { availableParallelism, cpus, loadavg, tmpdir } from 'node:os';
import path from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { Client, Metadata, credentials } from '@grpc/grpc-js';
import { build as esbuild } from 'esbuild';
import { DuckDBInstance } from '@duckdb/node-api';
import { encodeInferRequest } from '@pyml/runtime/protocol';
import { entrypointCommand, unpackImage } from '@pyml/launcher';
import { WIDE_FEATURES, WIDE_MLP, wideMlpProject, writeWideMlpData } from './batch-wide-mlp.ts';

const REPO = fileURLToPath(new URL('../', import.meta.url));
const HERE = path.join(REPO, 'bench/peers');
const PYML = path.join(REPO, 'packages/cli/bin/pyml.js');
const CACHE = path.join(REPO, 'bench/.work/peers');
const VENV = path.join(CACHE, 'venv');
const MODEL = path.join(REPO, 'examples/onnx-iris/weights/model.onnx');
const PY_PACKAGES = ['fastapi', 'uvicorn', 'uvloop', 'httptools', 'onnxruntime', 'grpcio', 'grpcio-tools', 'pyarrow', 'pandas'];

const { values } = parseArgs({ options: { seconds: { type: 'string', default: '5' }, only: { type: 'string' }, rows: { type: 'string', default: '1000000' }, rounds: { type: 'string', default: '1' } } });
const SECONDS = Number(values.seconds);
// --rounds N: every target N times, round after round (a neighbour's load falls on all alike), medians printed.
const ROUNDS = Math.max(1, Math.floor(Number(values.rounds)));
const ROWS = Number(values.rows);
const ONLY = values.only;
if (ONLY !== undefined && ONLY !== 'serve' && ONLY !== 'batch') throw new Error(`--only takes serve or batch, not '${ONLY}'`);
if (!(SECONDS > 0) || !(ROWS > 0)) throw new Error('--seconds and --rows take positive numbers');
const START_TIMEOUT_MS = 120_000;
const ROW = [5.1, 3.5, 1.4, 0.2];

// ---------------------------------------------------------------------------------------------------------------
// Processes: every one started is remembered and stopped, with its whole tree, by pid.

const started: ChildProcess[] = [];
let work = '';

/** pid → parent pid, VmRSS (bytes) for every process now. */
function processTable(): Map<number, { ppid: number; rss: number }> {
  const table = new Map<number, { ppid: number; rss: number }>();
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const stat = readFileSync(`/proc/${entry}/stat`, 'utf8');
      const ppid = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
      const rss = Number(/VmRSS:\s+(\d+)/.exec(readFileSync(`/proc/${entry}/status`, 'utf8'))?.[1] ?? 0) * 1024;
      table.set(Number(entry), { ppid, rss });
    } catch {
      // gone while we looked
    }
  }
  return table;
}

/** `root` and all its descendants. */
function tree(root: number, table = processTable()): number[] {
  const children = new Map<number, number[]>();
  for (const [pid, { ppid }] of table) children.set(ppid, [...(children.get(ppid) ?? []), pid]);
  const out: number[] = [];
  const stack = [root];
  while (stack.length) {
    const pid = stack.pop()!;
    if (!table.has(pid)) continue;
    out.push(pid);
    stack.push(...(children.get(pid) ?? []));
  }
  return out;
}

function treeRss(root: number): number {
  const table = processTable();
  return tree(root, table).reduce((sum, pid) => sum + table.get(pid)!.rss, 0);
}

const signal = (pid: number, sig: NodeJS.Signals) => { try { process.kill(pid, sig); } catch { /* already gone */ } };

/** SIGTERM to the process and every descendant, then SIGKILL to whatever of that tree is left after `graceMs`. */
async function stopTree(child: ChildProcess, graceMs = 3000): Promise<void> {
  if (child.pid === undefined) return;
  const pids = tree(child.pid);
  for (const pid of pids) signal(pid, 'SIGTERM');
  const until = Date.now() + graceMs;
  while (Date.now() < until && pids.some((pid) => existsSync(`/proc/${pid}`) && !isZombie(pid))) await sleep(20);
  for (const pid of pids) if (existsSync(`/proc/${pid}`)) signal(pid, 'SIGKILL');
}

function isZombie(pid: number): boolean {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3) === 'Z';
  } catch {
    return true;
  }
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

function launch(file: string, args: string[], env: Record<string, string | undefined> = {}): ChildProcess {
  const child = spawn(file, args, { cwd: REPO, env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
  started.push(child);
  return child;
}

/** The child's first stdout line that parses as JSON (servers print their port, pid or ready line so). */
function firstJsonLine(child: ChildProcess, what: string): Promise<Record<string, unknown>> {
  let err = '';
  child.stderr!.on('data', (d: Buffer) => { err = (err + d.toString()).slice(-4000); });
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`${what}: no ready line in ${START_TIMEOUT_MS} ms: ${err}`)), START_TIMEOUT_MS);
    const lines = createInterface({ input: child.stdout! });
    lines.on('line', (line) => {
      if (!line.startsWith('{')) return;
      const parsed = JSON.parse(line) as Record<string, unknown>;
      if (!('ready' in parsed) && !('port' in parsed)) return; // a log line
      clearTimeout(timer);
      lines.removeAllListeners('line');
      child.stdout!.resume();
      resolve(parsed);
    });
    child.once('exit', (code, sig) => { clearTimeout(timer); reject(new Error(`${what} exited (${code ?? sig}) before it was ready: ${err}`)); });
  });
}

// ---------------------------------------------------------------------------------------------------------------
// Python: a venv from the local wheel mirror, made once.

function run(file: string, args: string[], opts: { cwd?: string } = {}): { ok: boolean; out: string } {
  const r = spawnSync(file, args, { encoding: 'utf8', cwd: opts.cwd ?? REPO, maxBuffer: 64 << 20 });
  return { ok: r.status === 0, out: `${r.stdout ?? ''}${r.stderr ?? ''}${r.error ? String(r.error) : ''}` };
}

/** The local indexes and find-links pip is configured with; only local ones (file:, paths, loopback) are kept. */
function localPipSources(python: string): { indexes: string[]; findLinks: string[] } {
  const listed = run(python, ['-m', 'pip', 'config', 'list']).out;
  const values = (key: string) => [...listed.matchAll(new RegExp(`^[^\\s=]*\\.${key}='([^']*)'`, 'gm'))].flatMap((m) => m[1].split(/\s+/)).filter(Boolean);
  const local = (u: string) => u.startsWith('file:') || u.startsWith('/') || /^https?:\/\/(127\.|localhost[:/]|\[::1\])/.test(u);
  const unique = (xs: string[]) => [...new Set(xs)];
  return { indexes: unique([...values('index-url'), ...values('extra-index-url')].filter(local)), findLinks: unique(values('find-links').filter(local)) };
}

async function pythonEnv(): Promise<string> {
  const python = path.join(VENV, 'bin/python');
  const marker = path.join(VENV, '.pyml-bench-peers');
  const want = PY_PACKAGES.join(' ');
  if (existsSync(python) && (await readFile(marker, 'utf8').catch(() => '')) === want) return python;
  const candidates = [...new Set([which('python3'), '/usr/bin/python3'].filter((p): p is string => !!p))];
  const failures: string[] = [];
  for (const base of candidates) {
    await rm(VENV, { recursive: true, force: true });
    await mkdir(CACHE, { recursive: true });
    const made = run(base, ['-m', 'venv', VENV]);
    if (!made.ok) { failures.push(`${base} -m venv: ${made.out.trim().slice(-300)}`); continue; }
    const { indexes, findLinks } = localPipSources(python);
    if (!indexes.length && !findLinks.length) throw new Error('pip config list names no local wheel mirror (index-url, extra-index-url or find-links on this machine); bench/peers downloads nothing from elsewhere');
    // --isolated: pip reads no config or PIP_* variables, so the sources below are the only ones it can use.
    const sources = indexes.length
      ? ['--index-url', indexes[0], ...indexes.slice(1).flatMap((u) => ['--extra-index-url', u])]
      : ['--no-index'];
    console.error(`bench/peers: making ${VENV} with ${base} from ${[...indexes, ...findLinks].join(', ')} (once; about a minute)`);
    const installed = run(python, ['-m', 'pip', 'install', '--isolated', '--disable-pip-version-check', '--no-input', '--quiet', ...sources, ...findLinks.flatMap((f) => ['--find-links', f]), ...PY_PACKAGES]);
    if (!installed.ok) { failures.push(`${base}: pip install: ${installed.out.trim().slice(-800)}`); continue; }
    await writeFile(marker, want);
    return python;
  }
  throw new Error(`no Python venv could be made for the peers:\n${failures.join('\n')}`);
}

function which(cmd: string): string | undefined {
  for (const dir of (process.env.PATH ?? '').split(':')) if (dir && existsSync(path.join(dir, cmd))) return path.join(dir, cmd);
  return undefined;
}

// ---------------------------------------------------------------------------------------------------------------
// Load: wrk for HTTP (else load.ts), load.ts for gRPC.

interface Point { p50: number; p99: number; rps: number; n: number; errors: number }
interface Files { json: string; grpc: string; lua: string }

const WRK = which('wrk');

function runLoad(file: string, args: string[]): Promise<string> {
  const child = launch(file, args);
  let out = '';
  let err = '';
  child.stdout!.on('data', (d: Buffer) => { out += d.toString(); });
  child.stderr!.on('data', (d: Buffer) => { err += d.toString(); });
  return new Promise((resolve, reject) => child.once('exit', (code) => (code === 0 ? resolve(out) : reject(new Error(`${path.basename(file)} ${args.join(' ')}: exit ${code}: ${err.slice(-1000)}`)))));
}

async function httpLoad(url: string, files: Files, concurrency: number, seconds: number): Promise<Point> {
  if (!WRK) return JSON.parse(await runLoad(process.execPath, ['--import', 'tsx', path.join(HERE, 'load.ts'), 'http', url, files.json, String(concurrency), String(seconds)])) as Point;
  const out = await runLoad(WRK, ['-t1', `-c${concurrency}`, `-d${seconds}s`, '--timeout', '10s', '-s', files.lua, url]);
  const line = out.split('\n').find((l) => l.startsWith('{"wrk"'));
  if (!line) throw new Error(`wrk printed no summary: ${out}`);
  const w = JSON.parse(line) as { n: number; errors: number; status: number; us: number; p50: number; p99: number };
  return { n: w.n, errors: w.errors + w.status, p50: w.p50, p99: w.p99, rps: w.n / (w.us / 1e6) };
}

async function grpcLoad(address: string, files: Files, concurrency: number, seconds: number): Promise<Point> {
  return JSON.parse(await runLoad(process.execPath, ['--import', 'tsx', path.join(HERE, 'load.ts'), 'grpc', address, files.grpc, String(concurrency), String(seconds)])) as Point;
}

/** One POST of the row, resolving true on HTTP 200; an answer that is not this row's (label 0, setosa) throws. */
function httpOnce(url: string, body: string, timeoutMs: number): Promise<boolean> {
  return new Promise((resolve, reject) => {
    const req = httpRequest(url, { method: 'POST', timeout: Math.max(1, timeoutMs), headers: { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) } }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => {
        if (res.statusCode !== 200) return resolve(false);
        const text = Buffer.concat(chunks).toString();
        try {
          const answer = JSON.parse(text) as { outputs: { name: string; data: number[] }[] };
          if (answer.outputs.find((o) => o.name === 'label')?.data[0] === 0) return resolve(true);
        } catch {
          // not JSON: reported below
        }
        reject(new Error(`${url} answered 200 with something other than this row's prediction: ${text.slice(0, 300)}`));
      });
    });
    req.on('timeout', () => req.destroy(new Error('timed out')));
    req.on('error', () => resolve(false));
    req.end(body);
  });
}

function grpcOnce(address: string, bytes: Buffer): Promise<boolean> {
  const client = new Client(address, credentials.createInsecure());
  const identity = (b: Buffer): Buffer => b;
  return new Promise<boolean>((resolve) => {
    client.makeUnaryRequest('/inference.GRPCInferenceService/ModelInfer', identity, identity, bytes, new Metadata(), { deadline: Date.now() + START_TIMEOUT_MS }, (error, answer) => resolve(!error && !!answer?.length));
  }).finally(() => client.close());
}

// ---------------------------------------------------------------------------------------------------------------
// Serve targets.

interface Running { child: ChildProcess; url: string }
interface ServeTarget { name: string; protocol: 'REST' | 'gRPC'; role?: 'rest-base' | 'grpc-base' | 'floor' | 'image' | 'serve'; start(): Promise<Running> }
interface ServeRow { target: ServeTarget; cold: number; c1: Point; c32: Point; rss: number; note?: string }

async function measureServe(target: ServeTarget, files: Files, body: string, bytes: Buffer): Promise<ServeRow> {
  const t0 = performance.now();
  const running = await target.start();
  const first = target.protocol === 'REST' ? () => httpOnce(running.url, body, START_TIMEOUT_MS - (performance.now() - t0)) : () => grpcOnce(running.url, bytes);
  while (!(await first())) {
    if (performance.now() - t0 > START_TIMEOUT_MS) throw new Error(`${target.name}: no successful answer in ${START_TIMEOUT_MS} ms`);
    if (running.child.exitCode !== null) throw new Error(`${target.name} exited before its first answer`);
    await sleep(5);
  }
  const cold = (performance.now() - t0) / 1000;
  const load = target.protocol === 'REST' ? httpLoad : grpcLoad;
  await load(running.url, files, 32, 1); // warm-up: JIT, pools, connections
  const c1 = await load(running.url, files, 1, SECONDS);
  const c32 = await load(running.url, files, 32, SECONDS);
  const rss = treeRss(running.child.pid!);
  await stopTree(running.child);
  const errors = c1.errors + c32.errors;
  console.error(`  ${target.name}: cold ${cold.toFixed(2)} s, c=1 p50 ${us(c1.p50)}, c=32 ${c32.rps.toFixed(0)} req/s, RSS ${mb(rss)}${errors ? `, ${errors} errors` : ''}`);
  return { target, cold, c1, c32, rss };
}

/**
 * \`pyml serve\` as compiled JavaScript, bundled with the settings \`pyml deploy serve-image\` uses for the pyml-serve
 * image (packages/deploy/src/serve-image.ts): what a user runs, rather than the checkout's TypeScript through tsx
 * (whose compiler, esbuild service and loader thread would be counted in the start-up and the RSS).
 */
async function bundleServe(dir: string): Promise<string> {
  await esbuild({
    entryPoints: { pyml: path.join(REPO, 'packages/cli/src/serve-front.ts') }, outdir: dir, entryNames: '[name]', chunkNames: 'chunks/[name]-[hash]',
    outExtension: { '.js': '.mjs' }, bundle: true, splitting: true, platform: 'node', format: 'esm', target: 'node20', external: ['dockerode'],
    conditions: ['source'], logLevel: 'silent', legalComments: 'none', minifySyntax: true, minifyWhitespace: true,
    banner: { js: "import { createRequire as __pymlCreateRequire } from 'node:module'; const require = __pymlCreateRequire(import.meta.url);" },
  });
  return path.join(dir, 'pyml.mjs');
}

function serveTargets(python: string, stubs: string, image: string, unpacked: Awaited<ReturnType<typeof unpackImage>>, front: string): ServeTarget[] {
  const peerEnv = { PEER_ORT_THREADS: '1' };
  const fastapi = (workers: number): ServeTarget => ({
    name: `FastAPI + uvicorn + onnxruntime, ${workers} worker${workers > 1 ? 's' : ''}`, protocol: 'REST', role: workers === 1 ? 'rest-base' : undefined,
    async start() {
      const child = launch(python, [path.join(HERE, 'fastapi_launch.py'), MODEL, String(workers)], peerEnv);
      const { port } = await firstJsonLine(child, this.name);
      return { child, url: `http://127.0.0.1:${port}/v2/models/iris/infer` };
    },
  });
  const pymlServe = (protocol: 'REST' | 'gRPC'): ServeTarget => ({
    name: `pyml serve ${protocol}`, protocol, role: 'serve',
    async start() {
      const child = launch(process.execPath, [front, 'serve', image, '--grpc', '127.0.0.1:0', '--http', '127.0.0.1:0', '--json', '--max-concurrency', '256', '--access-log', 'off'], { PYML_ORT_THREADS: '1' });
      const ready = await firstJsonLine(child, this.name);
      return { child, url: protocol === 'REST' ? `http://${String(ready.http)}/v2/models/iris/infer` : String(ready.grpc) };
    },
  });
  const own = (protocol: 'REST' | 'gRPC'): ServeTarget => ({
    name: `the image's own ${protocol} (${protocol === 'REST' ? '--http' : '--tcp'})`, protocol, role: 'image',
    async start() {
      const socket = path.join(work, `own-${protocol}-${Date.now()}.sock`);
      const cmd = entrypointCommand(unpacked, ['serve', '--socket', socket, protocol === 'REST' ? '--http' : '--tcp', '127.0.0.1:0'], { PYML_ORT_THREADS: '1' });
      const child = spawn(cmd.file, cmd.args, { env: cmd.env, cwd: cmd.cwd, stdio: ['ignore', 'pipe', 'pipe'] });
      started.push(child);
      const ready = await firstJsonLine(child, this.name);
      const address = protocol === 'REST' ? ready.http : ready.tcp;
      if (typeof address !== 'string') throw new Error(`${this.name}: its ready line names no ${protocol === 'REST' ? 'http' : 'tcp'} address: ${JSON.stringify(ready)}`);
      return { child, url: protocol === 'REST' ? `http://${address}/v2/models/iris/infer` : address };
    },
  });
  return [
    fastapi(1),
    fastapi(2),
    {
      name: 'node:http + onnxruntime-node (one process)', protocol: 'REST', role: 'floor',
      async start() {
        const child = launch(process.execPath, [path.join(HERE, 'node-floor.mjs'), MODEL], peerEnv);
        const { port } = await firstJsonLine(child, this.name);
        return { child, url: `http://127.0.0.1:${port}/v2/models/iris/infer` };
      },
    },
    {
      name: 'two-hop floor: node:http front + framed Unix socket + node/onnxruntime process', protocol: 'REST', role: 'floor',
      async start() {
        const child = launch(process.execPath, [path.join(HERE, 'two-hop-floor.mjs'), MODEL], peerEnv);
        const { port } = await firstJsonLine(child, this.name);
        return { child, url: `http://127.0.0.1:${port}/v2/models/iris/infer` };
      },
    },
    pymlServe('REST'),
    own('REST'),
    {
      name: 'grpcio asyncio V2 server (Python)', protocol: 'gRPC', role: 'grpc-base',
      async start() {
        const child = launch(python, [path.join(HERE, 'grpc_server.py'), MODEL, stubs], peerEnv);
        const { port } = await firstJsonLine(child, this.name);
        return { child, url: `127.0.0.1:${port}` };
      },
    },
    {
      name: 'node:http2 gRPC + onnxruntime-node (one process)', protocol: 'gRPC', role: 'floor',
      async start() {
        const child = launch(process.execPath, [path.join(HERE, 'grpc-floor.mjs'), MODEL], peerEnv);
        const { port } = await firstJsonLine(child, this.name);
        return { child, url: `127.0.0.1:${port}` };
      },
    },
    pymlServe('gRPC'),
    own('gRPC'),
  ];
}

// ---------------------------------------------------------------------------------------------------------------
// Batch.

interface BatchRow {
  /** The model: iris or the wide tabular MLP. */
  model: string;
  name: string; wall: number; cpu: number; peakRss: number; rows: number; role?: 'base' | 'pyml';
  /** pyml batch's own account (its --json `cpu`): CPU before the run (start-up), per batch in the front and the workers. */
  pyml?: { before: number; frontPerBatchMs: number; workersPerBatchMs?: number; workersStartup?: number; batches: number; workers: number };
}

/** Runs a command under `sh`, whose `times` gives the CPU of every process it waited for (the whole tree). */
async function timed(name: string, file: string, args: string[], env: Record<string, string> = {}): Promise<{ name: string; wall: number; cpu: number; peakRss: number; out: string }> {
  const t0 = performance.now();
  const child = launch('/bin/sh', ['-c', '"$@"; code=$?; times >&2; exit $code', 'sh', file, ...args], env);
  let out = '';
  let err = '';
  child.stdout!.on('data', (d: Buffer) => { out += d.toString(); });
  child.stderr!.on('data', (d: Buffer) => { err += d.toString(); });
  let peakRss = 0;
  const sample = () => { peakRss = Math.max(peakRss, treeRss(child.pid!)); };
  const timer = setInterval(sample, 20);
  const code = await new Promise<number | null>((resolve) => child.once('exit', resolve));
  clearInterval(timer);
  const wall = (performance.now() - t0) / 1000;
  if (code !== 0) throw new Error(`${name} failed (${code}): ${err.slice(-2000)}`);
  // `times`: this shell's user and system time, then its children's.
  const lines = err.trim().split('\n').slice(-1)[0];
  const seconds = [...lines.matchAll(/(\d+)m([\d.]+)s/g)].map((m) => Number(m[1]) * 60 + Number(m[2]));
  if (seconds.length !== 2) throw new Error(`${name}: no CPU times from sh: ${err.slice(-300)}`);
  return { name, wall, cpu: seconds[0] + seconds[1], peakRss, out };
}

async function makeIrisParquet(file: string, rows: number): Promise<void> {
  const instance = await DuckDBInstance.create(':memory:');
  const c = await instance.connect();
  // The data bench/batch makes: an id and the four iris features, deterministic.
  await c.run(`COPY (SELECT range AS id,
      (4.3 + (range * 37 % 36) / 10.0)::FLOAT AS sepal_length, (2.0 + (range * 11 % 24) / 10.0)::FLOAT AS sepal_width,
      (1.0 + (range * 53 % 59) / 10.0)::FLOAT AS petal_length, (0.1 + (range * 7 % 24) / 10.0)::FLOAT AS petal_width
    FROM range(${rows})) TO '${file}' (FORMAT parquet)`);
  c.closeSync();
  instance.closeSync();
}

/**
 * pyml as installed pyml runs it: the compiled JavaScript of every package (dist/, built here by tsc -b), loaded by
 * node without the checkout's `source` condition, so no TypeScript is compiled while it runs. Returns the launcher.
 */
async function compiledPyml(): Promise<string> {
  const built = spawnSync(process.execPath, [path.join(REPO, 'node_modules/typescript/bin/tsc'), '-b', path.join(REPO, 'packages/cli/tsconfig.build.json')], { cwd: REPO, encoding: 'utf8' });
  // tsc emits the JavaScript even where a type is wrong (work in progress elsewhere in the checkout): say so, go on.
  if (built.status !== 0) {
    if (!existsSync(path.join(REPO, 'packages/cli/dist/main.js'))) throw new Error(`tsc -b packages/cli (pyml's dist/ for the batch runs) failed: ${built.stdout}${built.stderr}`);
    console.error(`bench/peers: tsc -b reported type errors (the JavaScript was emitted):\n${built.stdout.split('\n').slice(0, 5).join('\n')}`);
  }
  const launcher = path.join(work, 'pyml-dist.mjs');
  await writeFile(launcher, `import { main } from ${JSON.stringify(path.join(REPO, 'packages/cli/dist/main.js'))};\nprocess.exitCode = await main(process.argv.slice(2));\n`);
  return launcher;
}

/** One model of the batch comparison: its image, its ONNX file (for the scripts), its data and pyml batch's query. */
interface BatchCase { model: string; image: string; onnx: string; makeData(file: string, rows: number): Promise<void>; query(file: string): string }

async function batchCases(image: string): Promise<BatchCase[]> {
  const project = path.join(work, 'wide-mlp-project');
  const onnx = await wideMlpProject(project);
  const wideImage = path.join(work, 'wide-mlp-image');
  const built = spawnSync(process.execPath, [PYML, 'build', project, '--out', wideImage, '--json'], { cwd: REPO, encoding: 'utf8' });
  if (built.status !== 0) throw new Error(`pyml build of the wide MLP project: ${built.stderr}`);
  await unpackImage(wideImage);
  return [
    { model: 'iris', image, onnx: MODEL, makeData: makeIrisParquet, query: (f) => `SELECT id, sepal_length, sepal_width, petal_length, petal_width FROM read_parquet('${f}')` },
    {
      model: `wide MLP (${WIDE_MLP.inputs} columns → ${WIDE_MLP.hidden} → ${WIDE_MLP.outputs})`, image: wideImage, onnx, makeData: writeWideMlpData,
      query: (f) => `SELECT id, ${WIDE_FEATURES.join(', ')} FROM read_parquet('${f}')`,
    },
  ];
}

async function batchRows(python: string, image: string): Promise<BatchRow[]> {
  const pyml = await compiledPyml();
  const cases = await batchCases(image);
  const jobs = (c: BatchCase, input: string, tag: string): { name: string; role?: BatchRow['role']; file: string; args: string[]; env?: Record<string, string> }[] => [
    { name: 'pyarrow + onnxruntime script', role: 'base', file: python, args: [path.join(HERE, 'batch_pyarrow.py'), c.onnx, input, path.join(work, `pyarrow-${tag}.parquet`)] },
    { name: 'pandas + onnxruntime script', file: python, args: [path.join(HERE, 'batch_pandas.py'), c.onnx, input, path.join(work, `pandas-${tag}.parquet`)] },
    {
      name: 'pyml batch (--out DIR --format parquet)', role: 'pyml', file: process.execPath, env: { NODE_OPTIONS: '' },
      args: [pyml, 'batch', c.image, '--query', c.query(input), '--out', path.join(work, `pyml-${tag}`), '--format', 'parquet', '--keep', 'id', '--json'],
    },
  ];
  const out: BatchRow[] = [];
  for (const c of cases) {
    const tag = c.model.split(' ')[0];
    // Warm-up on a small file: Python's bytecode caches, the image's unpacked tree, the page cache for the programs.
    const small = path.join(work, `${tag}-small.parquet`);
    await c.makeData(small, 10_000);
    for (const job of jobs(c, small, `${tag}-warm`)) await timed(job.name, job.file, job.args, job.env);
    const input = path.join(work, `${tag}-${ROWS}.parquet`);
    await c.makeData(input, ROWS);
    const runs = new Map<string, BatchRow[]>();
    for (let round = 0; round < ROUNDS; round++) {
      for (const job of jobs(c, input, `${tag}-run${round}`)) {
        const r = await timed(job.name, job.file, job.args, job.env);
        const summary = job.role === 'pyml' ? JSON.parse(r.out) as { rows: number; batches: number; workers: number; cpu: { before: number; workers?: { startup: number }; perBatchMs: { front: number; workers?: number } } } : undefined;
        const count = summary ? summary.rows : Number(r.out.trim().split('\n').at(-1));
        if (count !== ROWS) throw new Error(`${job.name} wrote ${count} rows, not ${ROWS}`);
        const own = summary && { before: summary.cpu.before, frontPerBatchMs: summary.cpu.perBatchMs.front, workersPerBatchMs: summary.cpu.perBatchMs.workers, workersStartup: summary.cpu.workers?.startup, batches: summary.batches, workers: summary.workers };
        console.error(`  ${c.model}, ${job.name}: wall ${r.wall.toFixed(2)} s, CPU ${r.cpu.toFixed(2)} s, peak RSS ${mb(r.peakRss)}${own ? `, ${own.batches} batches, per batch ${own.frontPerBatchMs.toFixed(1)} ms front / ${own.workersPerBatchMs?.toFixed(1) ?? '–'} ms workers` : ''}`);
        runs.set(job.name, [...(runs.get(job.name) ?? []), { model: c.model, name: r.name, wall: r.wall, cpu: r.cpu, peakRss: r.peakRss, rows: count, role: job.role, ...(own ? { pyml: own } : {}) }]);
        await rm(job.args.find((a) => a.includes(`run${round}`))!, { recursive: true, force: true });
      }
    }
    // The median round of each target by wall (its other figures from the same round).
    out.push(...[...runs.values()].map((rs) => ({ ...[...rs].sort((p, q) => p.wall - q.wall)[Math.floor((rs.length - 1) / 2)], peakRss: median(rs.map((r) => r.peakRss)), cpu: median(rs.map((r) => r.cpu)) })));
  }
  return out;
}

/**
 * The median; of an even count, the better of the two middle values (`higherIsBetter` for req/s), not their mean:
 * on a shared machine one stalled round of two would otherwise show up in the figure by half.
 */
function median(xs: number[], higherIsBetter = false): number {
  const sorted = [...xs].sort((a, b) => a - b);
  const mid = Math.floor(sorted.length / 2);
  return sorted.length % 2 ? sorted[mid] : higherIsBetter ? sorted[mid] : sorted[mid - 1];
}

/** One row of a target's rounds: the median of each figure (error counts summed). */
function medianRow(rs: ServeRow[]): ServeRow {
  const point = (ps: Point[]): Point => ({ p50: median(ps.map((p) => p.p50)), p99: median(ps.map((p) => p.p99)), rps: median(ps.map((p) => p.rps), true), n: median(ps.map((p) => p.n), true), errors: ps.reduce((n, p) => n + p.errors, 0) });
  return { target: rs[0].target, cold: median(rs.map((r) => r.cold)), c1: point(rs.map((r) => r.c1)), c32: point(rs.map((r) => r.c32)), rss: median(rs.map((r) => r.rss)) };
}

// ---------------------------------------------------------------------------------------------------------------
// The table.

const us = (v: number) => (!Number.isFinite(v) ? '–' : v >= 10_000 ? `${(v / 1000).toFixed(1)} ms` : v >= 1000 ? `${(v / 1000).toFixed(2)} ms` : `${v.toFixed(0)} µs`);
const mb = (b: number) => `${(b / 1024 / 1024).toFixed(0)} MB`;
const x = (v: number) => (Number.isFinite(v) ? `${v.toFixed(2)}x` : '–');
const int = (v: number) => Math.round(v).toLocaleString('en-US');

function serveTable(rows: ServeRow[], failed: { name: string; why: string }[]): string[] {
  const rest = rows.find((r) => r.target.role === 'rest-base');
  const grpc = rows.find((r) => r.target.role === 'grpc-base');
  const out = [
    '| target | cold start | c=1 p50 | c=1 p99 | c=1 req/s | c=32 p50 | c=32 p99 | c=32 req/s | RSS (tree) | c=1 p50 vs base | c=32 req/s vs base |',
    '| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |',
  ];
  for (const r of rows) {
    const base = r.target.protocol === 'REST' ? rest : grpc;
    const errors = r.c1.errors + r.c32.errors;
    out.push(`| ${r.target.name}${r.target.role?.endsWith('base') ? ' (base)' : ''}${errors ? ` (${errors} errors)` : ''} | ${r.cold.toFixed(2)} s | ${us(r.c1.p50)} | ${us(r.c1.p99)} | ${int(r.c1.rps)} | ${us(r.c32.p50)} | ${us(r.c32.p99)} | ${int(r.c32.rps)} | ${mb(r.rss)} | ${base ? x(r.c1.p50 / base.c1.p50) : '–'} | ${base ? x(r.c32.rps / base.c32.rps) : '–'} |`);
  }
  for (const f of failed) out.push(`| ${f.name} | not measured: ${f.why.replace(/\|/g, '/').replace(/\s+/g, ' ').slice(0, 200)} | | | | | | | | | |`);
  return out;
}

function batchTable(rows: BatchRow[]): string[] {
  const out = [
    '| model | target | wall | CPU (tree) | peak RSS (tree) | rows/s | wall vs pyarrow | CPU vs pyarrow | pyml: CPU before the run | pyml: model processes\' start-up CPU (processes) | pyml: CPU per batch, front / workers (batches) |',
    '| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |',
  ];
  for (const r of rows) {
    const base = rows.find((b) => b.model === r.model && b.role === 'base');
    const own = r.pyml ? [`${r.pyml.before.toFixed(2)} s`, `${r.pyml.workersStartup?.toFixed(2) ?? '–'} s (${r.pyml.workers})`, `${r.pyml.frontPerBatchMs.toFixed(1)} / ${r.pyml.workersPerBatchMs?.toFixed(1) ?? '–'} ms (${r.pyml.batches})`] : ['', '', ''];
    out.push(`| ${r.model} | ${r.name}${r.role === 'base' ? ' (base)' : ''} | ${r.wall.toFixed(2)} s | ${r.cpu.toFixed(2)} s | ${mb(r.peakRss)} | ${int(r.rows / r.wall)} | ${base ? x(r.wall / base.wall) : '–'} | ${base ? x(r.cpu / base.cpu) : '–'} | ${own.join(' | ')} |`);
  }
  return out;
}

function aims(serve: ServeRow[], batch: BatchRow[]): string[] {
  const find = (name: string) => serve.find((r) => r.target.name.startsWith(name));
  const fastapi = find('FastAPI + uvicorn + onnxruntime, 1 worker');
  const grpcio = find('grpcio');
  const out: string[] = [];
  const aim = (text: string, ratio: number | undefined, limit: number, atMost: boolean) => {
    if (ratio === undefined || !Number.isFinite(ratio)) { out.push(`- ${text}: not measured`); return; }
    const met = atMost ? ratio <= limit : ratio >= limit;
    out.push(`- ${text}: ${ratio.toFixed(2)}x, ${met ? 'met' : 'NOT met'}`);
  };
  const latency = (r: ServeRow | undefined, base: ServeRow | undefined) => (r && base ? r.c1.p50 / base.c1.p50 : undefined);
  const throughput = (r: ServeRow | undefined, base: ServeRow | undefined) => (r && base ? r.c32.rps / base.c32.rps : undefined);
  if (serve.length) {
    const ownRest = find("the image's own REST");
    const serveRest = find('pyml serve REST');
    aim("the image's own REST, c=1 p50 ≤ 0.6x FastAPI's", latency(ownRest, fastapi), 0.6, true);
    aim("the image's own REST, c=32 req/s ≥ 2x FastAPI 1 worker's", throughput(ownRest, fastapi), 2, false);
    aim('pyml serve REST, c=1 p50 ≤ 0.8x FastAPI\'s', latency(serveRest, fastapi), 0.8, true);
    aim('pyml serve REST, c=32 req/s ≥ 1.5x FastAPI 1 worker\'s', throughput(serveRest, fastapi), 1.5, false);
    for (const name of ['pyml serve gRPC', "the image's own gRPC"]) {
      aim(`${name}, c=1 p50 ≤ 0.5x the grpcio peer's`, latency(find(name), grpcio), 0.5, true);
      aim(`${name}, c=32 req/s ≥ 1.5x the grpcio peer's`, throughput(find(name), grpcio), 1.5, false);
    }
    for (const name of ['pyml serve REST', 'pyml serve gRPC', "the image's own REST", "the image's own gRPC"]) {
      const r = find(name);
      aim(`cold start of ${name} ≤ FastAPI's`, r && fastapi ? r.cold / fastapi.cold : undefined, 1, true);
    }
    aim('memory of pyml serve (REST run, one model) ≤ 1.5x FastAPI 1 worker\'s', serveRest && fastapi ? serveRest.rss / fastapi.rss : undefined, 1.5, true);
  }
  for (const model of new Set(batch.map((r) => r.model))) {
    const pyml = batch.find((r) => r.model === model && r.role === 'pyml');
    const base = batch.find((r) => r.model === model && r.role === 'base');
    aim(`pyml batch wall, ${ROWS.toLocaleString('en-US')} rows of ${model}, ≤ 1.0x the pyarrow script's`, pyml && base ? pyml.wall / base.wall : undefined, 1, true);
  }
  return out;
}

// ---------------------------------------------------------------------------------------------------------------

let interrupted = false;
let cleaned: Promise<void> | undefined;
/** Stops every process tree started and removes the temp dir; once, whoever asks first (main's end or a signal). */
function cleanUp(): Promise<void> {
  cleaned ??= (async () => {
    await Promise.all(started.map((c) => (c.exitCode === null && c.signalCode === null ? stopTree(c) : undefined)));
    if (work) await rm(work, { recursive: true, force: true });
  })();
  return cleaned;
}
// A reader that went away (a pipe closed by Ctrl-C or a timeout) must not crash the clean-up with EPIPE.
for (const stream of [process.stdout, process.stderr]) stream.on('error', () => {});
for (const sig of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) {
  process.once(sig, () => {
    interrupted = true;
    console.error(`\nbench/peers: ${sig}, stopping what it started`);
    void cleanUp().finally(() => process.exit(130));
  });
}

async function main(): Promise<void> {
  const t0 = performance.now();
  work = await mkdtemp(path.join(tmpdir(), 'pyml-bench-peers-'));
  process.env.PYML_CACHE_DIR ??= path.join(CACHE, 'cache');
  const loadBefore = loadavg();
  const python = await pythonEnv();
  const stubs = path.join(work, 'stubs');
  await mkdir(stubs);
  const gen = run(python, ['-m', 'grpc_tools.protoc', '-I', path.join(REPO, 'proto'), `--python_out=${stubs}`, `--grpc_python_out=${stubs}`, path.join(REPO, 'proto/grpc_predict_v2.proto')]);
  if (!gen.ok) throw new Error(`grpc_tools.protoc: ${gen.out}`);

  const image = path.join(work, 'iris-image');
  const built = spawnSync(process.execPath, [PYML, 'build', path.join(REPO, 'examples/onnx-iris'), '--out', image, '--json'], { cwd: REPO, encoding: 'utf8' });
  if (built.status !== 0) throw new Error(`pyml build examples/onnx-iris: ${built.stderr}`);
  const unpacked = await unpackImage(image); // into PYML_CACHE_DIR, where pyml serve and pyml batch find it: no start pays for unpacking

  const body = JSON.stringify({ inputs: [{ name: 'input', datatype: 'FP32', shape: [1, 4], data: ROW }] });
  const bytes = encodeInferRequest({ modelName: 'iris', inputs: [{ name: 'input', tensor: { dtype: 'FP32', shape: [1, 4], data: Float32Array.from(ROW) } }], raw: true });
  const files: Files = { json: path.join(work, 'body.json'), grpc: path.join(work, 'request.bin'), lua: path.join(work, 'post.lua') };
  await writeFile(files.json, body);
  await writeFile(files.grpc, bytes);
  await writeFile(files.lua, [
    'wrk.method = "POST"',
    `wrk.body = ${JSON.stringify(body)}`,
    'wrk.headers["Content-Type"] = "application/json"',
    'done = function(summary, latency, requests)',
    '  local e = summary.errors',
    '  io.write(string.format(\'{"wrk":1,"n":%d,"errors":%d,"status":%d,"us":%d,"p50":%d,"p99":%d}\\n\', summary.requests, e.connect + e.read + e.write + e.timeout, e.status, summary.duration, latency:percentile(50), latency:percentile(99)))',
    'end',
  ].join('\n'));

  const serve: ServeRow[] = [];
  const failed: { name: string; why: string }[] = [];
  if (ONLY !== 'batch') {
    const targets = serveTargets(python, stubs, image, unpacked, await bundleServe(path.join(work, 'pyml-serve')));
    const measured = new Map<ServeTarget, ServeRow[]>();
    const why = new Map<ServeTarget, string>();
    for (let round = 1; round <= ROUNDS; round++) {
      console.error(`bench/peers: serve, ${SECONDS} s per load point${ROUNDS > 1 ? `, round ${round} of ${ROUNDS}` : ''}`);
      for (const target of targets) {
        try {
          measured.set(target, [...(measured.get(target) ?? []), await measureServe(target, files, body, bytes)]);
        } catch (error) {
          if (interrupted) throw error;
          console.error(`  ${target.name}: not measured: ${(error as Error).message}`);
          why.set(target, (error as Error).message);
        }
        await Promise.all(started.map((c) => (c.exitCode === null && c.signalCode === null ? stopTree(c) : undefined)));
      }
    }
    for (const target of targets) {
      const rs = measured.get(target);
      if (rs) serve.push(medianRow(rs));
      else failed.push({ name: target.name, why: why.get(target) ?? 'not run' });
    }
  }
  const batch = ONLY !== 'serve' ? (console.error(`bench/peers: batch, ${ROWS.toLocaleString('en-US')} rows, ${ROUNDS} round${ROUNDS > 1 ? 's' : ''}`), await batchRows(python, image)) : [];

  // `wrk -v` prints its version and usage, and exits 1.
  const wrkVersion = WRK ? (spawnSync(WRK, ['-v'], { encoding: 'utf8' }).stdout ?? '').split('\n')[0].replace(/\s+\[.*|\s+Copyright.*/, '') : '';
  const lines = [
    '',
    `## bench/peers: ${new Date().toISOString().slice(0, 16)}Z, ${availableParallelism()} cores (${cpus()[0]?.model.trim()}), node ${process.version}, ${run(python, ['--version']).out.trim()}`,
    ...(ROUNDS > 1 ? [`medians of ${ROUNDS} rounds (every target once a round, in the order below)`] : []),
    `load average before ${loadBefore.map((l) => l.toFixed(1)).join(' ')}, after ${loadavg().map((l) => l.toFixed(1)).join(' ')} (1, 5, 15 min)`,
    '',
  ];
  if (ONLY !== 'batch') {
    lines.push(`Serve: iris, one row per request; ${SECONDS} s per load point after a 1 s warm-up; HTTP load: ${WRK ? `${wrkVersion}, 1 thread` : 'bench/peers/load.ts (wrk not installed)'}, keep-alive; gRPC load: bench/peers/load.ts grpc (one node:http2 session, framed request, grpc-status checked); onnxruntime 1 intra-op thread in every server. Ratios: REST rows to FastAPI 1 worker, gRPC rows to the grpcio peer.`, '');
    lines.push(...serveTable(serve, failed), '');
  }
  if (batch.length) {
    lines.push(`Batch: ${ROWS.toLocaleString('en-US')} rows, Parquet → Parquet (after a warm-up run of each on 10,000 rows); CPU and peak RSS of the whole process tree; pyml batch compiled (dist/, as installed) with its default workers, the scripts with onnxruntime's default threads. pyml's own account (--json cpu): CPU before the run is its start-up and module loading (the local run as the one-file bundle the warm-up run made, packages/batch/src/bundled-import.ts); the model processes' start-up is their CPU until their first answer, less one batch; per batch, the front (DuckDB's threads included) and the model processes while the rows ran.`, '');
    lines.push(...batchTable(batch), '');
  }
  lines.push('Aims of issue 20 (ratios from this run):', ...aims(serve, batch), '', `(bench/peers ran ${((performance.now() - t0) / 1000).toFixed(0)} s)`);
  console.log(lines.join('\n'));
}

try {
  await main();
} catch (error) {
  // After a signal, what failed is only what the signal stopped: the handler reports it and exits.
  if (!interrupted) {
    process.exitCode = 1;
    console.error(error);
  }
} finally {
  await cleanUp();
  if (interrupted) process.exit(130);
}
