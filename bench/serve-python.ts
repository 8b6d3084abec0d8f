/**
 * bench/serve-python: what @pyml/plugin-python's sidecars add over calling the same Python model in-process, what a
 * second worker process gives at c=32, and how fast an image with a ~260 MB Python layer rebuilds when only model
 * code changes. The model is examples/pytorch-mlp (the pytorch preset of the Python plugin).
 *
 *   npx tsx bench/serve-python.ts [--seconds 3] [--rows 1] [--cold]
 *
 * Rows (examples/pytorch-mlp, `rows` × 8 FP32 per request):
 *   in-process   the model class's predict called in a Python loop (the floor: no socket, no Node)
 *   sidecar c=1  the plugin's adapter from Node: frame → Unix socket pair → Python predict → frame back
 *   sidecar c=32 32 requests in flight, pipelined over the one socket
 *   2 workers c=32  the same with `workers: 2`: two Python processes, each request to the one with fewer in flight
 * "added p50" = sidecar p50 − in-process p50; at c=32 also the service time per request (1 / throughput) against
 * the in-process one. Then the build: a full build of the example (with --cold into an empty blob cache, so the
 * python layer is listed, read and compressed; else with the blob cache as it is) and a rebuild after editing
 * model.py, with the layers whose digest changed.
 */
import { execFileSync } from 'node:child_process';
import { mkdtemp, readFile, rm, symlink, writeFile, cp } from 'node:fs/promises';
import { loadavg, tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import type { Logger, Signature, Tensors } from '@pyml/contract';
import { createPythonAdapter, collectPythonSources, PYTHON_PATH_DIR } from '@pyml/plugin-python';

const REPO = fileURLToPath(new URL('../', import.meta.url));
const EXAMPLE = path.join(REPO, 'examples/pytorch-mlp');
const PYML = path.join(REPO, 'packages/cli/bin/pyml.js');
const { values } = parseArgs({ options: { seconds: { type: 'string', default: '3' }, rows: { type: 'string', default: '1' }, cold: { type: 'boolean', default: false } } });
const SECONDS = Number(values.seconds);
const ROWS = Number(values.rows);

interface Cell { count: number; p50: number; p99: number; rps: number }

const quiet: Logger = { debug() {}, info() {}, warn: (m) => console.error(m), error: (m) => console.error(m) };
const pct = (sorted: number[], q: number) => sorted[Math.min(sorted.length - 1, Math.floor(sorted.length * q))]!;

async function sidecarCell(predict: (t: Tensors) => Promise<Tensors>, concurrency: number): Promise<Cell> {
  const data = Float32Array.from({ length: ROWS * 8 }, (_, i) => Math.sin(i));
  const input: Tensors = { input: { dtype: 'FP32', shape: [ROWS, 8], data } };
  for (let i = 0; i < 200; i++) await predict(input);
  const lat: number[] = [];
  const end = performance.now() + SECONDS * 1000;
  const start = performance.now();
  await Promise.all(Array.from({ length: concurrency }, async () => {
    while (performance.now() < end && lat.length < 200_000) {
      const t = process.hrtime.bigint();
      await predict(input);
      lat.push(Number(process.hrtime.bigint() - t) / 1000);
    }
  }));
  const elapsed = (performance.now() - start) / 1000;
  lat.sort((a, b) => a - b);
  return { count: lat.length, p50: pct(lat, 0.5), p99: pct(lat, 0.99), rps: lat.length / elapsed };
}

function inProcessCell(): Cell {
  const out = execFileSync('/usr/bin/python3', [path.join(REPO, 'bench/serve-python-inprocess.py'), EXAMPLE, PYTHON_PATH_DIR, String(SECONDS), String(ROWS)], { encoding: 'utf8' });
  const r = JSON.parse(out) as { count: number; p50_us: number; p99_us: number; rps: number };
  return { count: r.count, p50: r.p50_us, p99: r.p99_us, rps: r.rps };
}

interface Built { seconds: number; parts: { name: string; digest: string; size: number; reused: boolean }[] }

function build(project: string, out: string, cacheDir?: string): Built {
  const started = performance.now();
  const env = cacheDir ? { ...process.env, PYML_CACHE_DIR: cacheDir } : process.env;
  const stdout = execFileSync(process.execPath, [PYML, 'build', project, '--out', out, '--json'], { encoding: 'utf8', maxBuffer: 1 << 24, env });
  const wall = (performance.now() - started) / 1000;
  const r = JSON.parse(stdout) as { parts: Built['parts'] };
  return { seconds: wall, parts: r.parts };
}

const fmt = (n: number, d = 1) => n.toFixed(d).padStart(9);

async function main() {
  console.log(`bench/serve-python: ${ROWS} row(s) per request, ${SECONDS} s per cell, load ${loadavg()[0]!.toFixed(2)} (2-core shared machine)`);
  const signature: Signature = JSON.parse(JSON.stringify({ inputs: [{ name: 'input', dtype: 'FP32', shape: [-1, 8] }], outputs: [] }));
  process.env.PYML_PYTORCH_PYTHONPATH = PYTHON_PATH_DIR;
  const adapter = await createPythonAdapter()({
    weightsDir: path.join(EXAMPLE, 'weights'), weightsPath: (f) => path.join(EXAMPLE, 'weights', f), signature, logger: quiet,
  });
  const session = await adapter.start({ ...(await collectPythonSources(path.join(EXAMPLE, 'src/model.py'))), originDir: path.join(EXAMPLE, 'src') });
  const floor = inProcessCell();
  const c1 = await sidecarCell((t) => session.predict(t), 1);
  const c32 = await sidecarCell((t) => session.predict(t), 32);
  await session.close();
  const two = await adapter.start({ ...(await collectPythonSources(path.join(EXAMPLE, 'src/model.py'))), originDir: path.join(EXAMPLE, 'src'), workers: 2 });
  const c32x2 = await sidecarCell((t) => two.predict(t), 32);
  await two.close();

  console.log('\n                   p50 µs    p99 µs     req/s   p50 added µs   p50 ratio   req/s ratio');
  const row = (name: string, c: Cell) => console.log(`${name.padEnd(15)}${fmt(c.p50)} ${fmt(c.p99)} ${fmt(c.rps, 0)}   ${fmt(c.p50 - floor.p50)}    ${fmt(c.p50 / floor.p50, 2)}x   ${fmt(c.rps / floor.rps, 2)}x`);
  row('in-process', floor);
  row('sidecar c=1', c1);
  row('sidecar c=32', c32);
  row('2 workers c=32', c32x2);
  const service = (c: Cell) => 1e6 / c.rps;
  console.log(`(at c=32 the one Python process answers in turn, so p50 includes queueing behind ~31 requests; service time per request: ${service(c32).toFixed(0)} µs vs ${service(floor).toFixed(0)} µs in-process, ${(service(c32) - service(floor)).toFixed(0)} µs added)`);

  const dir = await mkdtemp(path.join(tmpdir(), 'pyml-bench-python-'));
  try {
    const project = path.join(dir, 'project');
    await cp(EXAMPLE, project, { recursive: true, filter: (s) => !s.includes(`${path.sep}.pyml`) });
    await symlink(path.join(REPO, 'node_modules'), path.join(project, 'node_modules'));
    const first = build(project, path.join(dir, 'oci'), values.cold ? path.join(dir, 'cache') : undefined);
    const model = path.join(project, 'src/model.py');
    await writeFile(model, (await readFile(model, 'utf8')).replace('"""The served model', `"""(edited ${Date.now()}) The served model`));
    const second = build(project, path.join(dir, 'oci'), values.cold ? path.join(dir, 'cache') : undefined);
    const python = first.parts.find((p) => p.name === 'python')!;
    const changed = second.parts.filter((p) => first.parts.find((q) => q.name === p.name)?.digest !== p.digest).map((p) => p.name).join(', ');
    console.log(`\nbuild            seconds`);
    console.log(`first build     ${fmt(first.seconds, 2)}   python layer ${(python.size / 2 ** 20).toFixed(0)} MiB gzip, ${python.reused ? 'from the blob cache (use --cold to build it)' : 'listed, read and compressed now'}`);
    console.log(`model.py edit   ${fmt(second.seconds, 2)}   layers changed: ${changed}; python layer ${second.parts.find((p) => p.name === 'python')!.reused ? 'reused' : 'rebuilt'} (${(second.seconds / first.seconds).toFixed(2)}x the first build)`);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

await main();
