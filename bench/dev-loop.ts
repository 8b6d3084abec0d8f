/**
 * The dev loop: edit → new code answering, for a code-only change (one constant in the model's source), measured
 * from the client's side (the time the file is written to the first answer computed by the new code), in rounds:
 *
 *   pyml serve DIR --watch       rebuild through the cache + hot swap (the old process answers meanwhile)
 *   pyml build + restart serve   what a user does without --watch: build, stop the server, start it, first answer
 *   uvicorn --reload (peer)      FastAPI with uvicorn's reloader (StatReload: no watchfiles in the venv), the same
 *                                model in Python; its venv is bench/peers' (bench/.work/peers/venv, made by
 *                                `npx tsx bench/peers.ts`); the row says so when it is missing
 *
 *   npx tsx bench/dev-loop.ts [--rounds 5]
 *
 * pyml runs from the checkout's sources (tsx), the same for both pyml rows. Prints the load average beside.
 */
import { type ChildProcess, spawn, spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, rm, symlink, writeFile } from 'node:fs/promises';
import { loadavg, tmpdir } from 'node:os';
import path from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';

const REPO = fileURLToPath(new URL('..', import.meta.url));
const PYML = path.join(REPO, 'packages/cli/bin/pyml.js');
const PEER_PYTHON = path.join(REPO, 'bench/.work/peers/venv/bin/python');
const roundsArg = process.argv.indexOf('--rounds');
const ROUNDS = roundsArg > 0 ? Number(process.argv[roundsArg + 1]) : 5;
const ENV = { ...process.env, PYML_CACHE_DIR: process.env.PYML_CACHE_DIR ?? path.join(tmpdir(), 'pyml-bench-cache'), NO_COLOR: '1' };

const CONFIG = `import { defineConfig } from '@pyml/core';
export default defineConfig({
  name: 'scaler', version: '0.1.0', model: './src/model.ts', kind: 'tensor',
  signature: { inputs: [{ name: 'x', dtype: 'FP32', shape: [-1, 2] }], outputs: [{ name: 'y', dtype: 'FP32', shape: [-1, 2] }] },
  plugins: [],
});
`;
const MODEL = (factor: number) => `import { TensorModel, type InitContext, type Tensors } from '@pyml/contract';
const FACTOR = ${factor};
export default class Scaler extends TensorModel {
  async init(_ctx: InitContext): Promise<void> {}
  async predict({ x }: Tensors): Promise<Tensors> {
    const y = Float32Array.from(x.data as Float32Array);
    for (let r = 0; r < x.shape[0]; r++) y[r * 2] *= FACTOR;
    return { y: { dtype: 'FP32', shape: [x.shape[0], 2], data: y } };
  }
}
`;
const PY_APP = (factor: number) => `from fastapi import FastAPI, Request
FACTOR = ${factor}
app = FastAPI()

@app.post("/v2/models/scaler/infer")
async def infer(request: Request) -> dict:
    body = await request.json()
    x = body["inputs"][0]["data"]
    y = [v * FACTOR if i % 2 == 0 else v for i, v in enumerate(x)]
    return {"model_name": "scaler", "outputs": [{"name": "y", "datatype": "FP32", "shape": [len(x) // 2, 2], "data": y}]}
`;

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const started: ChildProcess[] = [];
process.on('exit', () => { for (const c of started) c.kill('SIGKILL'); });

/** The factor the server at `base` answers with, or undefined while it does not answer. */
async function factorAt(base: string): Promise<number | undefined> {
  try {
    const res = await fetch(`http://${base}/v2/models/scaler/infer`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ inputs: [{ name: 'x', datatype: 'FP32', shape: [1, 2], data: [1, 0] }] }) });
    if (res.status !== 200) return undefined;
    return ((await res.json()) as { outputs: { data: number[] }[] }).outputs[0]!.data[0];
  } catch {
    return undefined;
  }
}

/** Polls every 10 ms until `base` answers `factor`; returns when it did. */
async function untilFactor(base: () => string | undefined, factor: number, timeoutMs = 120_000): Promise<number> {
  const until = Date.now() + timeoutMs;
  for (;;) {
    const b = base();
    if (b && (await factorAt(b)) === factor) return Date.now();
    if (Date.now() > until) throw new Error(`no answer with factor ${factor} within ${timeoutMs} ms`);
    await sleep(10);
  }
}

/** `pyml serve ARGS --json` started; resolves with its HTTP address at the ready line. */
function startServe(args: string[]): Promise<{ child: ChildProcess; http: string }> {
  const child = spawn(process.execPath, [PYML, 'serve', ...args, '--grpc', '127.0.0.1:0', '--http', '127.0.0.1:0', '--start', 'eager', '--json', '--access-log', 'off'], { cwd: REPO, env: ENV, stdio: ['ignore', 'pipe', 'pipe'] });
  started.push(child);
  let err = '';
  child.stderr!.on('data', (d: Buffer) => { err = (err + d.toString()).slice(-4000); });
  return new Promise((resolve, reject) => {
    createInterface({ input: child.stdout! }).once('line', (line) => resolve({ child, http: (JSON.parse(line) as { http: string }).http }));
    child.once('exit', (code) => reject(new Error(`pyml serve exited ${code}: ${err}`)));
  });
}

async function stop(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise((r) => child.once('exit', r));
  child.kill('SIGTERM');
  await exited;
}

async function makeProject(root: string): Promise<string> {
  const dir = path.join(root, 'scaler');
  await mkdir(path.join(dir, 'src'), { recursive: true });
  await symlink(path.join(REPO, 'node_modules'), path.join(dir, 'node_modules'));
  await writeFile(path.join(dir, 'pyml.config.ts'), CONFIG);
  await writeFile(path.join(dir, 'src/model.ts'), MODEL(1));
  return dir;
}

/** `pyml serve DIR --watch`: write the edit, wait for the new factor. */
async function watchRounds(dir: string): Promise<number[]> {
  const served = await startServe([dir, '--watch']);
  const times: number[] = [];
  try {
    if ((await factorAt(served.http)) !== 1) throw new Error('the watched server does not answer factor 1');
    for (let round = 1; round <= ROUNDS; round++) {
      const factor = 1 + round;
      const edited = Date.now();
      await writeFile(path.join(dir, 'src/model.ts'), MODEL(factor));
      times.push((await untilFactor(() => served.http, factor)) - edited);
      await sleep(1500); // the old process drains; the next round starts from a quiet server
    }
  } finally {
    await stop(served.child);
  }
  return times;
}

/** Without --watch: edit, pyml build, stop the running pyml serve, start it on the new image, first answer. */
async function restartRounds(dir: string): Promise<number[]> {
  const image = path.join(dir, '.pyml', 'image');
  const build = () => {
    const r = spawnSync(process.execPath, [PYML, 'build', dir, '--progress', 'quiet'], { cwd: REPO, env: ENV, encoding: 'utf8' });
    if (r.status !== 0) throw new Error(`pyml build failed: ${r.stderr}`);
  };
  build();
  let served = await startServe([image]);
  const times: number[] = [];
  try {
    for (let round = 1; round <= ROUNDS; round++) {
      const factor = 100 + round;
      const edited = Date.now();
      await writeFile(path.join(dir, 'src/model.ts'), MODEL(factor));
      build();
      await stop(served.child);
      served = await startServe([image]);
      times.push((await untilFactor(() => served.http, factor)) - edited);
    }
  } finally {
    await stop(served.child);
  }
  return times;
}

/** uvicorn --reload on a FastAPI app with the same model in Python. */
async function uvicornRounds(root: string): Promise<number[]> {
  const dir = path.join(root, 'py');
  await mkdir(dir, { recursive: true });
  await writeFile(path.join(dir, 'app.py'), PY_APP(1));
  const child = spawn(PEER_PYTHON, ['-m', 'uvicorn', 'app:app', '--reload', '--reload-dir', dir, '--host', '127.0.0.1', '--port', '0'], { cwd: dir, stdio: ['ignore', 'pipe', 'pipe'] });
  started.push(child);
  let base: string | undefined;
  let err = '';
  child.stderr!.on('data', (d: Buffer) => {
    err = (err + d.toString()).slice(-4000);
    base ??= /Uvicorn running on http:\/\/([\d.]+:\d+)/.exec(err)?.[1];
  });
  const times: number[] = [];
  try {
    await untilFactor(() => base, 1, 60_000).catch((e: Error) => { throw new Error(`${e.message}; uvicorn said: ${err}`); });
    for (let round = 1; round <= ROUNDS; round++) {
      const factor = 1 + round;
      const edited = Date.now();
      await writeFile(path.join(dir, 'app.py'), PY_APP(factor));
      times.push((await untilFactor(() => base, factor)) - edited);
      await sleep(500);
    }
  } finally {
    // uvicorn's reloader runs the server as its child: SIGTERM to the reloader stops both.
    await stop(child);
  }
  return times;
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
const fmt = (ms: number) => `${(ms / 1000).toFixed(2)} s`;

async function main(): Promise<void> {
  const root = await mkdtemp(path.join(tmpdir(), 'pyml-bench-dev-loop-'));
  const loadBefore = loadavg();
  const rows: { name: string; times?: number[]; note?: string }[] = [];
  try {
    const dir = await makeProject(root);
    // Warm the cache (base and runtime layers) once, as a developer's machine has it.
    const warm = spawnSync(process.execPath, [PYML, 'build', dir, '--progress', 'quiet'], { cwd: REPO, env: ENV, encoding: 'utf8' });
    if (warm.status !== 0) throw new Error(`pyml build failed: ${warm.stderr}`);
    rows.push({ name: 'pyml serve DIR --watch (rebuild + hot swap)', times: await watchRounds(dir) });
    rows.push({ name: 'pyml build + restart pyml serve (base)', times: await restartRounds(dir) });
    if (existsSync(PEER_PYTHON)) rows.push({ name: 'FastAPI, uvicorn --reload (peer)', times: await uvicornRounds(root) });
    else rows.push({ name: 'FastAPI, uvicorn --reload (peer)', note: `not run: no ${PEER_PYTHON} (npx tsx bench/peers.ts makes it)` });
  } finally {
    await rm(root, { recursive: true, force: true });
  }
  const base = median(rows.find((r) => r.name.includes('(base)'))!.times!);
  console.log(`\nedit → new code answering, code-only change, ${ROUNDS} rounds each (median, min–max; vs base)\n`);
  console.log('| loop | median | min–max | vs base |\n| --- | ---: | ---: | ---: |');
  for (const r of rows) {
    if (!r.times) { console.log(`| ${r.name} | ${r.note} | | |`); continue; }
    console.log(`| ${r.name} | ${fmt(median(r.times))} | ${fmt(Math.min(...r.times))}–${fmt(Math.max(...r.times))} | ${(median(r.times) / base).toFixed(2)}x |`);
  }
  console.log(`\nload average before ${loadBefore.map((l) => l.toFixed(1)).join(' ')}, after ${loadavg().map((l) => l.toFixed(1)).join(' ')} (1, 5, 15 min); ${new Date().toISOString()}`);
}

await main();
process.exit(0);
