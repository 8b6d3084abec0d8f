import { spawn } from 'node:child_process';
import { mkdir, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { PYML_BIN, REPO, parseJson, pyml, testEnv } from '../helpers/cli.ts';
import { tempDir } from '../helpers/project.ts';
import { IRIS_COLUMNS, buildIris, sql, writeIrisData } from './fixtures.ts';
import { waitFor } from '../serve/fixtures.ts';

/**
 * A failure anywhere (a row the model throws on, a NULL, a crashed model process, Ctrl-C) leaves an earlier target
 * exactly as it was and names the failing batch's rows. The model is the iris example with a planted fault: it
 * throws when it sees 999, exits the process on 998, and sleeps PYML_TEST_SLOW_MS per batch.
 */

const ROWS = 5000;
let image = '';
let dir = '';
let parquet = '';

const FAULTY = (source: string) => source.replace(
  'async predict(inputs: Tensors): Promise<Tensors> {',
  `async predict(inputs: Tensors): Promise<Tensors> {
    const values = inputs.input.data as Float32Array;
    if (values.includes(999)) throw new Error('sentinel 999 seen');
    if (values.includes(998)) process.exit(7);
    const slow = Number(process.env.PYML_TEST_SLOW_MS || 0);
    if (slow) await new Promise((resolve) => setTimeout(resolve, slow));`,
);

test.before(async () => {
  image = await buildIris(FAULTY);
  dir = await tempDir('pyml-batch-atomic-');
  ({ parquet } = await writeIrisData(dir, ROWS, { sentinelAt: 3456 }));
});

const db = () => join(dir, 'w.duckdb');
const out = () => join(dir, 'dataset');
const good = () => `SELECT id, ds, ${IRIS_COLUMNS.join(', ')} FROM read_parquet('${parquet}') WHERE id != 3456`;
const toTable = (query: string, ...extra: string[]) => pyml(['batch', image, '--query', query, '--into', 'scores', '--db', db(), '--keep', 'id,ds', '--json', ...extra]);
const toDataset = (query: string, ...extra: string[]) => pyml(['batch', image, '--query', query, '--out', out(), '--format', 'parquet', '--partition-by', 'ds', '--keep', 'id', '--json', ...extra]);

async function tableState(): Promise<unknown> {
  return (await sql(db(), `SELECT count(*)::INT AS n, sum(id)::BIGINT AS ids, sum(label)::BIGINT AS labels,
      sum(list_sum(probabilities::DOUBLE[]))::DOUBLE AS p FROM scores`))[0];
}

async function datasetState(): Promise<Record<string, string>> {
  const files: Record<string, string> = {};
  for (const part of (await readdir(out())).sort()) {
    for (const f of await readdir(join(out(), part))) files[`${part}/${f}`] = (await readFile(join(out(), part, f))).toString('base64');
  }
  return files;
}

const leftovers = async () => (await readdir(dir)).filter((f) => f.includes('.pyml-'));

test('earlier targets are written by a clean run', async () => {
  let r = await toTable(good());
  assert.is(r.code, 0, r.stderr);
  assert.equal(await tableState(), { ...(await tableState() as object), n: ROWS - 1 });
  r = await toDataset(good());
  assert.is(r.code, 0, r.stderr);
  assert.equal(Object.keys(await datasetState()).length, 3);
});

test('a row the model throws on in the first batch: the reason the model gave, not a row count', async () => {
  // The process fails before it answered any batch, so its stream holds the schema alone (an empty batch to Arrow JS).
  const r = await toTable(`SELECT id, ds, ${IRIS_COLUMNS.join(', ')} FROM read_parquet('${parquet}') WHERE id >= 3456 ORDER BY id`, '--batch-rows', '1000', '--workers', '1');
  assert.is(r.code, 1, r.stderr);
  assert.match(parseJson<{ error: { message: string } }>(r).error.message, /^batch 0 \(rows 0–999\) failed: model predict failed: sentinel 999 seen/);
});

test('a row the model throws on: exit 1, the batch and its row range named, both targets untouched', async () => {
  const before = await tableState();
  const beforeFiles = await datasetState();
  const query = `SELECT id, ds, ${IRIS_COLUMNS.join(', ')} FROM read_parquet('${parquet}')`;
  let r = await toTable(query, '--batch-rows', '1000', '--workers', '2');
  assert.is(r.code, 1);
  const message = parseJson<{ error: { message: string; hint: string } }>(r).error.message;
  assert.match(message, /^batch 3 \(rows 3000–3999\) failed: model predict failed: sentinel 999 seen/);
  assert.equal(await tableState(), before);

  r = await toDataset(query, '--batch-rows', '1000');
  assert.is(r.code, 1);
  assert.match(parseJson<{ error: { message: string } }>(r).error.message, /^batch 3 \(rows 3000–3999\) failed: model predict failed: sentinel 999 seen/);
  assert.equal(await datasetState(), beforeFiles);
  assert.equal(await leftovers(), []);
});

test('a NULL input value fails its batch with the row, before the model sees it', async () => {
  const before = await tableState();
  const query = `SELECT id, ds, sepal_length, CASE WHEN id = 1234 THEN NULL ELSE sepal_width END AS sepal_width, petal_length, petal_width FROM read_parquet('${parquet}') WHERE id != 3456`;
  const r = await toTable(query, '--batch-rows', '500');
  assert.is(r.code, 1);
  assert.match(parseJson<{ error: { message: string } }>(r).error.message, /^batch 2 \(rows 1000–1499\) failed: input 'input' is NULL at row 1234/);
  assert.equal(await tableState(), before);
});

test('a model process that dies mid-way: the batch it died on is named, the target untouched', async () => {
  const before = await tableState();
  const query = `SELECT id, ds, CASE WHEN id = 4321 THEN 998 ELSE sepal_length END AS sepal_length, sepal_width, petal_length, petal_width FROM read_parquet('${parquet}') WHERE id != 3456`;
  const r = await toTable(query, '--batch-rows', '1000', '--workers', '2');
  assert.is(r.code, 1);
  // id 4321 is row 4320 once row 3456 is filtered out.
  assert.match(parseJson<{ error: { message: string } }>(r).error.message, /^batch 4 \(rows 4000–4998\) failed: the model process exited with code 7/);
  assert.equal(await tableState(), before);
});

test('Ctrl-C mid-way: exit 130, interrupted, the target untouched, nothing left behind', async () => {
  const before = await tableState();
  const child = spawn(process.execPath, [PYML_BIN, 'batch', image, '--query', good(), '--into', 'scores', '--db', db(), '--keep', 'id,ds', '--batch-rows', '125', '--workers', '2'], {
    cwd: REPO, env: { ...process.env, ...testEnv(), PYML_TEST_SLOW_MS: '400' }, stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stderr = '';
  child.stderr.on('data', (c: Buffer) => { stderr += c.toString(); });
  const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
  // 40 batches × 400 ms over 2 processes: about 8 s of work once the model processes are up. Interrupt once rows
  // are flowing (its progress says so on stderr), however long start-up took on a loaded machine.
  await waitFor('the run to start sending rows', () => /running the rows through/.test(stderr) || child.exitCode !== null, 120_000);
  assert.is(child.exitCode, null, `still running when interrupted; stderr: ${stderr}`);
  child.kill('SIGINT');
  const code = await exited;
  assert.is(code, 130, stderr);
  assert.match(stderr, /interrupted.*table scores in .* was left as it was/);
  assert.equal(await tableState(), before);
  assert.equal(await leftovers(), []);
});

test('kill -9 mid-way: the target untouched; the next run removes the dead run\'s scratch directory, not a live one\'s', async () => {
  const before = await tableState();
  const tmp = await tempDir('pyml-batch-tmp-');
  const env = { ...process.env, ...testEnv(), TMPDIR: tmp };
  const child = spawn(process.execPath, [PYML_BIN, 'batch', image, '--query', good(), '--into', 'scores', '--db', db(), '--keep', 'id,ds', '--batch-rows', '125', '--workers', '2'], {
    cwd: REPO, env: { ...env, PYML_TEST_SLOW_MS: '400' }, stdio: ['ignore', 'ignore', 'pipe'],
  });
  let stderr = '';
  child.stderr.on('data', (c: Buffer) => { stderr += c.toString(); });
  const exited = new Promise<unknown>((resolve) => child.on('exit', resolve));
  await waitFor('the run to start sending rows', () => /running the rows through/.test(stderr) || child.exitCode !== null, 120_000);
  assert.is(child.exitCode, null, `still running when killed; stderr: ${stderr}`);
  child.kill('SIGKILL');
  await exited;
  const stale = (await readdir(tmp)).filter((f) => f.startsWith('pyml-batch-scratch-'));
  assert.is(stale.length, 1, `the killed run's scratch directory is left: ${stale}`);
  assert.equal(await tableState(), before);
  // A scratch directory whose owner still runs (this test process) must survive the sweep.
  const live = `pyml-batch-scratch-${process.pid}-live`;
  await mkdir(join(tmp, live));

  const r = await pyml(['batch', image, '--query', good(), '--into', 'scores', '--db', db(), '--keep', 'id,ds', '--json'], { env: { TMPDIR: tmp } });
  assert.is(r.code, 0, r.stderr);
  assert.equal((await readdir(tmp)).filter((f) => f.startsWith('pyml-batch-scratch-')), [live]);
  await rm(tmp, { recursive: true, force: true });
});

test('--out that is not a dataset (a file, or a directory with other files) is refused before any row runs, and kept', async () => {
  const before = await datasetState();
  const notes = join(dir, 'notes');
  await mkdir(join(notes, 'ds=a'), { recursive: true });
  await writeFile(join(notes, 'ds=a', 'data_0.parquet'), 'not really parquet');
  await writeFile(join(notes, 'ds=a', 'README.md'), 'mine\n');
  const run = (target: string) => pyml(['batch', image, '--query', good(), '--out', target, '--partition-by', 'ds', '--keep', 'id', '--json']);
  const r = await run(notes);
  assert.is(r.code, 2, r.stderr);
  const error = parseJson<{ error: { message: string; hint: string } }>(r).error;
  assert.is(error.message, `--out ${notes} is not a Parquet dataset (it holds ds=a/README.md); refusing to replace it (its files would be lost)`);
  assert.is(error.hint, 'give --out a new path, an empty directory, or an earlier dataset');
  assert.is(await readFile(join(notes, 'ds=a', 'README.md'), 'utf8'), 'mine\n');
  const file = join(dir, 'scores.csv');
  await writeFile(file, 'id\n');
  const onFile = await run(file);
  assert.is(onFile.code, 2);
  assert.match(parseJson<{ error: { message: string } }>(onFile).error.message, /scores\.csv exists and is not a directory; refusing to replace it/);
  assert.is(await readFile(file, 'utf8'), 'id\n');
  // The earlier dataset (Parquet files in Hive directories) is still a fine target, and an empty directory too.
  assert.is((await toDataset(good())).code, 0);
  assert.equal(Object.keys(await datasetState()), Object.keys(before));
  await mkdir(join(dir, 'empty'));
  assert.is((await run(join(dir, 'empty'))).code, 0);
  assert.equal(await leftovers(), []);
  await rm(notes, { recursive: true });
  await rm(file);
});

test('a dataset temp left beside the target by a killed run is removed by the next run; a live run\'s is not', async () => {
  const dead = spawn('true');
  await new Promise((resolve) => dead.on('exit', resolve));
  const deadTemp = join(dir, `.dataset.pyml-${dead.pid}-0123456789ab`);
  const liveTemp = join(dir, `.dataset.pyml-${process.pid}-0123456789ab`);
  for (const d of [deadTemp, liveTemp]) {
    await mkdir(join(d, 'ds=x'), { recursive: true });
    await writeFile(join(d, 'ds=x', 'data_0.parquet'), 'half written');
  }
  const r = await toDataset(good());
  assert.is(r.code, 0, r.stderr);
  assert.equal(await leftovers(), [`.dataset.pyml-${process.pid}-0123456789ab`]);
  await rm(liveTemp, { recursive: true, force: true });
});

test.run();
