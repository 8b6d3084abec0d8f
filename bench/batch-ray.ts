/**
 * bench/batch-ray: rows/s of `pyml batch --engine ray` on a Ray cluster of a head (no CPUs) and two worker nodes, side by side
 * with the local `pyml batch` on the same 1M-row Parquet input, in one run. The cluster is started first (ray start,
 * as test/ray does) and its start-up is reported apart; the Ray figure is the whole `pyml batch --engine ray` call on
 * the running cluster (staging the query, the Ray Data job, publishing the dataset), and the job alone beside it.
 * Both outputs are compared bit for bit at the end (compare_datasets.py), so the two figures are for the same work.
 *
 * All nodes are on this machine and share its cores: the Ray figure shows what the distributed path costs over the
 * local one for the same cores, not a speed-up; on real nodes each actor has cores of its own.
 *
 *   npx tsx bench/batch-ray.ts [--rows 1000000] [--runs 2] [--cpus-per-node 2]
 *
 * Needs the Ray environment (bash scripts/setup-ray.sh). Data and outputs under bench/.work/batch-ray.
 */
import { spawnSync } from 'node:child_process';
import { mkdir, rm } from 'node:fs/promises';
import { availableParallelism } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { DuckDBInstance } from '@duckdb/node-api';
import { startRayCluster } from '../test/ray/ray-cluster.ts';
import { rayPythonPath } from '../test/ray/ray-env.ts';
import { compareDatasets } from '../test/ray/fixtures.ts';

const REPO = fileURLToPath(new URL('../', import.meta.url));
const WORK = path.join(REPO, 'bench/.work/batch-ray');
const PYML = path.join(REPO, 'packages/cli/bin/pyml.js');
const { values } = parseArgs({ options: { rows: { type: 'string', default: '1000000' }, runs: { type: 'string', default: '2' }, 'cpus-per-node': { type: 'string', default: '2' } } });
const ROWS = Number(values.rows);
const RUNS = Math.max(1, Number(values.runs));
const env = { ...process.env, PYML_CACHE_DIR: path.join(WORK, 'cache'), PYML_RAY_PYTHON: rayPythonPath(), NO_COLOR: '1' };

function pyml(args: string[]): { seconds: number; summary: Record<string, unknown> } {
  const started = performance.now();
  const r = spawnSync(process.execPath, [PYML, ...args, '--json'], { env, encoding: 'utf8', maxBuffer: 1 << 26 });
  const seconds = (performance.now() - started) / 1000;
  if (r.status !== 0) throw new Error(`pyml ${args[0]} failed (${r.status}): ${r.stderr}`);
  return { seconds, summary: JSON.parse(r.stdout) as Record<string, unknown> };
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
const rate = (s: number) => `${Math.round(ROWS / s).toLocaleString('en-US').padStart(9)} rows/s`;

await mkdir(WORK, { recursive: true });
const image = path.join(WORK, 'iris-image');
await rm(image, { recursive: true, force: true });
pyml(['build', path.join(REPO, 'examples/onnx-iris'), '--out', image]);
const parquet = path.join(WORK, `iris-${ROWS}.parquet`);
const db = await DuckDBInstance.create(':memory:');
const c = await db.connect();
await c.run(`COPY (SELECT range AS id, '2024-01-0' || (range % 3 + 1) AS ds,
    (4.3 + (range * 37 % 36) / 10.0)::FLOAT AS sepal_length, (2.0 + (range * 11 % 24) / 10.0)::FLOAT AS sepal_width,
    (1.0 + (range * 53 % 59) / 10.0)::FLOAT AS petal_length, (0.1 + (range * 7 % 24) / 10.0)::FLOAT AS petal_width
  FROM range(${ROWS})) TO '${parquet}' (FORMAT parquet)`);
c.closeSync();
db.closeSync();
const query = `SELECT id, ds, sepal_length, sepal_width, petal_length, petal_width FROM read_parquet('${parquet}')`;
const common = ['--query', query, '--keep', 'id', '--partition-by', 'ds', '--format', 'parquet'];

console.log(`bench/batch-ray: ${ROWS.toLocaleString('en-US')} iris rows, ${availableParallelism()} cores on this machine, median of ${RUNS}`);
const localOut = path.join(WORK, 'out-local');
const local: number[] = [];
for (let i = 0; i < RUNS; i++) local.push(pyml(['batch', image, ...common, '--out', localOut]).seconds);

const cpus = Number(values['cpus-per-node']);
// The head offers no CPUs (as a production head does), so the actors and Ray Data's tasks run on the two workers.
const cluster = await startRayCluster({ workers: 2, cpusPerNode: cpus, headCpus: 0 });
try {
  const rayOut = path.join(WORK, 'out-ray');
  const ray: number[] = [];
  const jobs: number[] = [];
  let last: Record<string, unknown> = {};
  const others: number[] = [];
  for (let i = 0; i < RUNS; i++) {
    // Two actors, one per worker node's share (SPREAD), like the two local model processes.
    const r = pyml(['batch', image, ...common, '--out', rayOut, '--engine', 'ray', '--ray-address', cluster.address, '--workers', '2']);
    ray.push(r.seconds);
    const t = r.summary.timings as { stage: number; connect: number; run: number; publish: number };
    jobs.push(t.run);
    others.push(r.seconds - t.run);
    last = r.summary;
  }
  const same = compareDatasets(localOut, rayOut, 'id');
  console.log(`  Ray cluster start-up (head + 2 workers, ${cpus} CPUs each): ${cluster.startupSeconds.toFixed(1)} s (not in the figures below)`);
  console.log(`  local pyml batch (${availableParallelism()} model processes): ${median(local).toFixed(1).padStart(6)} s  ${rate(median(local))}   (baseline)`);
  console.log(`  pyml batch --engine ray (${String(last.actors)} actors, ${String(last.nodes)} nodes): ${median(ray).toFixed(1).padStart(6)} s  ${rate(median(ray))}   ${(median(local) / median(ray)).toFixed(2)}x local`);
  console.log(`    of which the Ray Data job alone:  ${median(jobs).toFixed(1).padStart(6)} s  ${rate(median(jobs))}`);
  const t = last.timings as { stage: number; connect: number; publish: number };
  console.log(`    and the rest ${median(others).toFixed(1)} s: staging the query ${t.stage.toFixed(1)} s, Ray connect ${t.connect.toFixed(1)} s, publish ${t.publish.toFixed(1)} s, node/python start-up and unpacking the rest`);
  console.log(`  outputs: ${same.rows[0]} vs ${same.rows[1]} rows, ${same.differences.length ? `DIFFERENT: ${same.differences.join('; ')}` : 'bit for bit equal'}`);
} finally {
  cluster.stop();
}
