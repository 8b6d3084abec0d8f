import { readFileSync, readdirSync } from 'node:fs';
import { readdir, readFile, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { Ajv } from 'ajv';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { REPO, parseJson, pyml, testEnv } from '../helpers/cli.ts';
import { tempDir } from '../helpers/project.ts';
import { sql, writeIrisData } from '../batch/fixtures.ts';
import { buildSlowableIris, compareDatasets } from './fixtures.ts';
import { type RayCluster, startRayCluster } from './ray-cluster.ts';
import { rayPythonPath } from './ray-env.ts';

/**
 * `pyml batch --engine ray` on a real Ray cluster: a head and a worker node started here (ray start, every port 0),
 * the environment from scripts/setup-ray.sh. Its output is compared with the local `pyml batch` row for row and bit
 * for bit; a Ray actor is SIGKILLed mid-job; a bad row fails the job and leaves the earlier output as it was.
 */

const ROWS = 60_000;
const QUERY = (parquet: string, where = '', columns = 'id, ds') => `SELECT ${columns}, sepal_length, sepal_width, petal_length, petal_width FROM read_parquet('${parquet}') ${where}`;
let cluster: RayCluster;
let image = '';
let dir = '';
let data: { parquet: string; csv: string };
let local = '';
let onCluster = '';

test.before(async () => {
  Object.assign(process.env, testEnv(), { PYML_RAY_PYTHON: rayPythonPath() });
  dir = await tempDir('pyml-ray-batch-');
  const started = performance.now();
  [image, cluster] = await Promise.all([buildSlowableIris(), startRayCluster({ workers: 1 })]);
  console.log(`  (image and a head + 1 worker Ray cluster in ${((performance.now() - started) / 1000).toFixed(1)} s; cluster alone ${cluster.startupSeconds.toFixed(1)} s)`);
  data = await writeIrisData(dir, ROWS);
  local = join(dir, 'local');
  const r = await pyml(['batch', image, '--query', QUERY(data.parquet), '--keep', 'id', '--partition-by', 'ds', '--out', local, '--json']);
  assert.is(r.code, 0, r.stderr);
});

test.after(() => cluster?.stop());

const leftovers = async (target: string) => (await readdir(dir)).filter((n) => n.startsWith(`.${target}.pyml-`));

test('the column plan is checked before anything runs on Ray (the cluster address is not even dialled)', async () => {
  const out = join(dir, 'refused');
  const query = `SELECT id, ds, 'x' AS note, sepal_length, sepal_width, petal_length, petal_width FROM read_parquet('${data.parquet}')`;
  // 127.0.0.1:1 has no Ray: reaching it would fail differently, and much later.
  const r = await pyml(['batch', image, '--query', query, '--keep', 'id', '--partition-by', 'ds', '--out', out, '--engine', 'ray', '--ray-address', '127.0.0.1:1']);
  assert.is(r.code, 1, r.stderr);
  assert.match(r.stderr, /input 'input' .*packed from the query's columns besides --keep.*the query has 5 \(note, sepal_length/);
  assert.not.ok(await stat(out).catch(() => undefined), 'no output');
  assert.equal(await leftovers('refused'), []);
});

test('on a head + worker cluster: the output equals local pyml batch row for row, bit for bit, in the same Hive partitions', async () => {
  onCluster = join(dir, 'on-cluster');
  const r = await pyml(['batch', image, '--query', QUERY(data.parquet), '--keep', 'id', '--partition-by', 'ds', '--out', onCluster,
    '--engine', 'ray', '--ray-address', cluster.address, '--workers', '2', '--batch-rows', '2048', '--json']);
  assert.is(r.code, 0, r.stderr);
  const summary = parseJson<{ engine: string; rows: number; nodes: number; actors: number; files: number; timings: Record<string, number> }>(r);
  console.log(`  (Ray job ${summary.timings.run.toFixed(1)} s, ${summary.files} files)`);
  const schema = JSON.parse(readFileSync(join(REPO, 'schemas/batch-output.schema.json'), 'utf8')) as object;
  const validate = new Ajv({ allErrors: true }).compile(schema);
  assert.ok(validate(summary), `--engine ray --json matches schemas/batch-output.schema.json: ${JSON.stringify(validate.errors)}`);
  assert.equal([summary.engine, summary.rows, summary.nodes, summary.actors], ['ray', ROWS, 2, 2]);
  assert.equal((await readdir(onCluster)).sort(), (await readdir(local)).sort());
  const same = compareDatasets(local, onCluster, 'id');
  assert.equal(same, { rows: [ROWS, ROWS], distinctKeys: [ROWS, ROWS], columns: same.columns, differences: [] });
  assert.equal(same.columns[0], same.columns[1]);
  // Readers see the same column types (DuckDB here).
  const describe = (d: string) => sql(undefined, `SELECT column_name, column_type FROM (DESCRIBE SELECT * FROM read_parquet('${d}/**/*.parquet', hive_partitioning = true)) ORDER BY column_name`);
  assert.equal(await describe(onCluster), await describe(local));
  assert.equal(await leftovers('on-cluster'), []);
});

/** ray::MapWorker actors of this cluster that have an entrypoint process of the image as a child. */
function busyActors(): number[] {
  const pids = cluster.pids();
  const actors = new Set(pids.filter((p) => cmdline(p).startsWith('ray::MapWorker')));
  const busy = new Set<number>();
  for (const name of readdirSync('/proc')) {
    const pid = Number(name);
    if (!Number.isInteger(pid) || !cmdline(pid).includes('entrypoint.mjs')) continue;
    const ppid = parentOf(pid);
    if (ppid && actors.has(ppid)) busy.add(ppid);
  }
  return [...busy];
}

function cmdline(pid: number): string {
  try { return readFileSync(`/proc/${pid}/cmdline`, 'utf8').replaceAll('\0', ' '); } catch { return ''; }
}

function parentOf(pid: number): number | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
  } catch { return undefined; }
}

test('SIGKILL of a Ray actor mid-job: the job still ends with every row exactly once, equal to local pyml batch', async () => {
  // Each batch waits 150 ms in the model, so the job runs for seconds after the actors have started.
  const out = join(dir, 'killed');
  const running = pyml(['batch', image, '--query', QUERY(data.parquet), '--keep', 'id', '--partition-by', 'ds', '--out', out,
    '--engine', 'ray', '--ray-address', cluster.address, '--workers', '2', '--batch-rows', '1024', '--json'], { env: { PYML_TEST_BATCH_DELAY_MS: '150' } });
  let exited = false;
  void running.then(() => { exited = true; });
  let victim: number | undefined;
  const deadline = Date.now() + 150_000;
  while (!victim && !exited && Date.now() < deadline) {
    victim = busyActors()[0];
    if (!victim) await new Promise((r) => setTimeout(r, 200));
  }
  assert.ok(victim, 'an actor with its entrypoint process was seen before the job ended');
  // Let it work through a few batches first, then kill it the hard way.
  await new Promise((r) => setTimeout(r, 1500));
  assert.not.ok(exited, 'the job was still running when the actor was killed');
  process.kill(victim, 'SIGKILL');
  const replacements = new Set<number>();
  while (!exited) {
    for (const a of busyActors()) if (a !== victim) replacements.add(a);
    await new Promise((r) => setTimeout(r, 250));
  }
  const r = await running;
  assert.is(r.code, 0, r.stderr);
  assert.is(parseJson<{ rows: number }>(r).rows, ROWS);
  const same = compareDatasets(local, out, 'id');
  assert.equal(same, { rows: [ROWS, ROWS], distinctKeys: [ROWS, ROWS], columns: same.columns, differences: [] });
  assert.ok(replacements.size >= 1, 'actors went on working after the kill');
});

test('a row the model cannot take fails the job naming it; the earlier dataset at the target is left as it was', async () => {
  const before = await snapshot(onCluster);
  const query = `SELECT id, ds, CASE WHEN id = 31337 THEN NULL ELSE sepal_length END AS sepal_length, sepal_width, petal_length, petal_width FROM read_parquet('${data.parquet}')`;
  const r = await pyml(['batch', image, '--query', query, '--keep', 'id', '--partition-by', 'ds', '--out', onCluster, '--engine', 'ray', '--ray-address', cluster.address, '--workers', '2']);
  assert.is(r.code, 1, r.stderr);
  assert.match(r.stderr, /pyml model iris:1\.0\.0 failed on the row with id=31337, ds='2024-01-03': input 'input' has NULL values inside its arrays/, r.stderr);
  assert.equal(await snapshot(onCluster), before);
  assert.equal(await leftovers('on-cluster'), []);
});

test('without --ray-address a local Ray is started for the run (and gone after it); same output as local', async () => {
  const where = 'WHERE id < 5000';
  const small = join(dir, 'local-small');
  const l = await pyml(['batch', image, '--query', QUERY(data.parquet, where, 'id'), '--keep', 'id', '--out', small, '--json']);
  assert.is(l.code, 0, l.stderr);
  const out = join(dir, 'local-ray');
  const r = await pyml(['batch', image, '--query', QUERY(data.parquet, where, 'id'), '--keep', 'id', '--out', out, '--engine', 'ray', '--json']);
  assert.is(r.code, 0, r.stderr);
  assert.is(parseJson<{ nodes: number }>(r).nodes, 1);
  const same = compareDatasets(small, out, 'id');
  assert.equal(same, { rows: [5000, 5000], distinctKeys: [5000, 5000], columns: same.columns, differences: [] });
});

/** Every file under a dataset, with its bytes' length and content. */
async function snapshot(root: string): Promise<Record<string, string>> {
  const files: Record<string, string> = {};
  for (const entry of await readdir(root, { recursive: true, withFileTypes: true })) {
    if (!entry.isFile()) continue;
    const path = join(entry.parentPath, entry.name);
    files[path.slice(root.length)] = (await readFile(path)).toString('base64');
  }
  return files;
}

test.run();
