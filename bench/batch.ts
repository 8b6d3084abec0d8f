/**
 * bench/batch: `pyml batch` over 1M rows (workers = cores) side by side with the baseline measured in the same run:
 * in-process onnxruntime-node over the same Arrow record batches (same batch size, same model file, the same
 * onnxruntime thread count in total). Then peak RSS of the whole `pyml batch` process tree for 1M and 10M rows (it
 * must not grow with the row count).
 *
 * Two models: iris (4 features, ~40 ns a row in onnxruntime: the data path is all there is, and DuckDB alone costs
 * several times the model) and a tabular MLP (32 features → 1024 ReLU → 8, ~41k multiply-adds a row: a model that
 * costs something, as batch scoring models do; its 32 features are 32 FLOAT columns, packed into the input). Peak RSS is measured on iris, whose data path is the heaviest per row.
 *
 * The figure held against the aim (pyml batch at >= 0.8x the in-process rows/s) is the model phase: from runBatch's
 * start (image read, DuckDB opened, the query started) until the target table is committed. The model processes are
 * started by the CLI before it loads DuckDB and Arrow, so their start-up overlaps the CLI's and is in the wall clock,
 * not in the model phase. Each side runs RUNS times and the median is used. A third line shows the floor of the
 * DuckDB side alone: the same query read and the same output table written, in process, with no model at all.
 * From the CPU time both of those spend, a "ceiling" line shows the best ratio these cores allow at all: the model's
 * work and the DuckDB side's work, perfectly spread over the cores, with nothing else.
 *
 * pyml batch runs compiled (dist/, built by tsc -b at the start), as installed pyml does: no TypeScript at run time.
 *
 *   npx tsx bench/batch.ts [--rows 1000000] [--big 10000000] [--workers N] [--runs 5] [--mlp-runs 3] [--only iris|mlp]
 *
 * Data is generated with DuckDB range() into Parquet under bench/.work/batch.
 */
import { spawn, spawnSync } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import { mkdir, rm, writeFile } from 'node:fs/promises';
import { availableParallelism } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { DuckDBInstance } from '@duckdb/node-api';
import { RowWriter } from '../packages/batch/src/row-writer.ts';
import { TableInserter } from '../packages/batch/src/table-inserter.ts';
import * as ort from 'onnxruntime-node';
import { type Tensor, type TensorSpec, elementCount } from '@pyml/contract';
import { columnsToTensors, tensorsToRecordBatch } from '@pyml/runtime/arrow-io';
import { ChunkBatcher } from '../packages/batch/src/chunk-batcher.ts';
import { WIDE_FEATURES, WIDE_MLP, wideMlpProject, writeWideMlpData } from './batch-wide-mlp.ts';

const REPO = fileURLToPath(new URL('../', import.meta.url));
const WORK = path.join(REPO, 'bench/.work/batch');
const PYML = path.join(REPO, 'packages/cli/bin/pyml.js');
const { values } = parseArgs({ options: { rows: { type: 'string', default: '1000000' }, big: { type: 'string', default: '10000000' }, workers: { type: 'string' }, runs: { type: 'string', default: '5' }, 'mlp-runs': { type: 'string', default: '3' }, only: { type: 'string' } } });
// --only iris|mlp: one model's figures, no peak-RSS runs (for iterating; the default prints everything).
const ONLY = values.only;
if (ONLY !== undefined && ONLY !== 'iris' && ONLY !== 'mlp') throw new Error(`--only takes iris or mlp, not ${ONLY}`);
const ROWS = Number(values.rows);
const BIG = Number(values.big);
const CORES = availableParallelism();
const WORKERS = Number(values.workers ?? CORES);
const RUNS = Math.max(1, Number(values.runs));
const MLP_RUNS = Math.max(1, Number(values['mlp-runs']));
// onnxruntime intra-op threads: pyml batch gives each of its N processes cores/N (PYML_ORT_THREADS, set here
// explicitly); the baseline gets the same total, as one session with all of them or as N sessions run side by side.
const THREADS = Math.max(1, Math.floor(CORES / WORKERS));
const MLP = WIDE_MLP;

/** One model as the bench runs it: its image, its data, the query pyml batch runs and the floor's equivalent. */
interface Case {
  name: string;
  image: string;
  model: string;
  input: TensorSpec[];
  outputs: TensorSpec[];
  /** What `pyml batch --query` gets (with an `id` to --keep). */
  query(file: string): string;
  /** The same rows as one FLOAT[K] column called `input`: the Arrow batches the workers get. */
  packed(file: string): string;
  /** The floor's SELECT (the query as pyml batch wraps it) and its table. */
  floorSelect(file: string): string;
  floorTable: string;
  makeData(file: string, rows: number): Promise<void>;
}

const IRIS_COLUMNS = '[sepal_length, sepal_width, petal_length, petal_width]::FLOAT[4]';
const IRIS: Omit<Case, 'image'> = {
  name: 'iris', model: path.join(REPO, 'examples/onnx-iris/weights/model.onnx'),
  input: [{ name: 'input', dtype: 'FP32', shape: [-1, 4] }],
  outputs: [{ name: 'probabilities', dtype: 'FP32', shape: [-1, 3] }, { name: 'label', dtype: 'INT64', shape: [-1] }],
  query: (file) => `SELECT id, sepal_length, sepal_width, petal_length, petal_width FROM read_parquet('${file}')`,
  packed: (file) => `SELECT ${IRIS_COLUMNS} AS input FROM read_parquet('${file}')`,
  floorSelect: (file) => `SELECT q.id, [q.sepal_length, q.sepal_width, q.petal_length, q.petal_width]::FLOAT[4] AS pyml_input_0 FROM (${IRIS.query(file)}) AS q`,
  floorTable: 'CREATE TABLE out (id BIGINT, probabilities FLOAT[3], label BIGINT)',
  makeData: makeIrisData,
};
const FEATURES = WIDE_FEATURES;
/** Tabular data as it usually is: one FLOAT column per feature, packed by pyml batch into the [-1, 32] input. */
const TABULAR: Omit<Case, 'image' | 'model'> = {
  name: 'tabular', input: [{ name: 'input', dtype: 'FP32', shape: [-1, MLP.inputs] }], outputs: [{ name: 'output', dtype: 'FP32', shape: [-1, MLP.outputs] }],
  query: (file) => `SELECT id, ${FEATURES.join(', ')} FROM read_parquet('${file}')`,
  packed: (file) => `SELECT [${FEATURES.join(', ')}]::FLOAT[${MLP.inputs}] AS input FROM read_parquet('${file}')`,
  floorSelect: (file) => `SELECT q.id, [${FEATURES.map((f) => `q.${f}`).join(', ')}]::FLOAT[${MLP.inputs}] AS pyml_input_0 FROM (${TABULAR.query(file)}) AS q`,
  floorTable: `CREATE TABLE out (id BIGINT, output FLOAT[${MLP.outputs}])`,
  makeData: writeWideMlpData,
};

const env = { ...process.env, PYML_CACHE_DIR: process.env.PYML_CACHE_DIR ?? path.join(WORK, 'cache'), NO_COLOR: '1', PYML_ORT_THREADS: String(THREADS) };

async function makeIrisData(file: string, rows: number): Promise<void> {
  const instance = await DuckDBInstance.create(':memory:');
  const c = await instance.connect();
  await c.run(`COPY (SELECT range AS id,
      (4.3 + (range * 37 % 36) / 10.0)::FLOAT AS sepal_length, (2.0 + (range * 11 % 24) / 10.0)::FLOAT AS sepal_width,
      (1.0 + (range * 53 % 59) / 10.0)::FLOAT AS petal_length, (0.1 + (range * 7 % 24) / 10.0)::FLOAT AS petal_width
    FROM range(${rows})) TO '${file}' (FORMAT parquet)`);
  c.closeSync();
  instance.closeSync();
}

/** The same Arrow record batches pyml batch sends its workers: DuckDB chunks → FixedSizeList<K> batches of pyml batch's size. */
async function arrowBatches(bench: Case, file: string, batchRows: number) {
  const instance = await DuckDBInstance.create(':memory:');
  const c = await instance.connect();
  const stream = await c.stream(bench.packed(file));
  const batcher = new ChunkBatcher(bench.input, batchRows);
  const batches = [];
  for (;;) {
    const chunk = await stream.fetchChunk();
    if (!chunk || chunk.rowCount === 0) break;
    for (const b of batcher.add(chunk)) batches.push(tensorsToRecordBatch(bench.input, b.tensors));
  }
  const last = batcher.flush();
  if (last) batches.push(tensorsToRecordBatch(bench.input, last.tensors));
  c.closeSync();
  instance.closeSync();
  return batches;
}

/**
 * In process: Arrow batch → tensor → onnxruntime-node, as the model inside the image does, without processes or pipes.
 * `sessions` sessions of `threads` intra-op threads each; batches go round-robin, `sessions` runs at a time.
 */
async function inProcess(bench: Case, batches: Awaited<ReturnType<typeof arrowBatches>>, sessions: number, threads: number): Promise<Timed> {
  const models = await Promise.all(Array.from({ length: sessions }, () => ort.InferenceSession.create(bench.model, { intraOpNumThreads: threads })));
  const cpu = process.cpuUsage();
  const started = performance.now();
  let rows = 0;
  let checksum = 0;
  await Promise.all(models.map(async (session, k) => {
    for (let i = k; i < batches.length; i += sessions) {
      const { input } = columnsToTensors(bench.input, batches[i], 'input');
      const out = await session.run({ input: new ort.Tensor('float32', input.data as Float32Array, input.shape) });
      checksum += Number(out[bench.outputs[0].name].data[0]);
      rows += batches[i].numRows;
    }
  }));
  const seconds = (performance.now() - started) / 1000;
  const cpuSeconds = cpuSince(cpu);
  await Promise.all(models.map((m) => m.release()));
  return { rows, seconds, cpuSeconds };
}

/**
 * The DuckDB side alone, in process: the query pyml batch runs (inputs packed, --keep id) streamed and batched, and
 * the same output table (id, probabilities FLOAT[3], label BIGINT) written the way pyml batch writes it, with
 * constant predictions and no model: the floor under pyml batch's model phase on this machine.
 */
async function duckdbOnly(bench: Case, file: string, db: string, batchRows: number): Promise<Timed> {
  await rm(db, { force: true });
  const cpu = process.cpuUsage();
  const started = performance.now();
  const instance = await DuckDBInstance.create(db);
  const c = await instance.connect();
  const reader = await instance.connect();
  await reader.run(`SET streaming_buffer_size = '16MB'`);
  const stream = await reader.stream(bench.floorSelect(file));
  const writer = new RowWriter(stream.columnTypes().slice(0, 1), bench.outputs);
  const inserter = new TableInserter(c, writer, 'out', Math.max(batchRows, 131072)); // as pyml batch inserts
  await c.run('BEGIN TRANSACTION');
  await c.run(bench.floorTable);
  const batcher = new ChunkBatcher(bench.input, batchRows, 1);
  const predict = (rows: number) => {
    writer.addPredictions(Object.fromEntries(bench.outputs.map((o) => [o.name, constantTensor(o, rows)])), rows);
    inserter.kick();
  };
  let rows = 0;
  for (;;) {
    const chunk = await stream.fetchChunk();
    if (!chunk || chunk.rowCount === 0) break;
    const ready = batcher.add(chunk);
    writer.addChunk(chunk);
    rows += chunk.rowCount;
    for (const b of ready) predict(b.rows);
  }
  const last = batcher.flush();
  if (last) predict(last.rows);
  await inserter.flush();
  await c.run('COMMIT');
  // Stopped where pyml batch's model phase stops: the table committed, the database not yet closed.
  const seconds = (performance.now() - started) / 1000;
  const cpuSeconds = cpuSince(cpu);
  reader.closeSync();
  c.closeSync();
  instance.closeSync();
  return { rows, seconds, cpuSeconds };
}

/** CPU time of this whole process (every thread: onnxruntime's, DuckDB's) since `from`, in seconds. */
function cpuSince(from: NodeJS.CpuUsage): number {
  const used = process.cpuUsage(from);
  return (used.user + used.system) / 1e6;
}

/** Zeros of an output's type for `rows` rows: what the floor writes in place of predictions. */
function constantTensor(spec: TensorSpec, rows: number): Tensor {
  const shape = [rows, ...spec.shape.slice(1)];
  const n = elementCount(shape);
  return (spec.dtype === 'INT64' ? { dtype: spec.dtype, shape, data: new BigInt64Array(n) } : { dtype: 'FP32', shape, data: new Float32Array(n) }) as Tensor;
}

/** Resident memory of a process and all its descendants, in bytes. */
function treeRss(root: number): { total: number; self: number } {
  const children = new Map<number, number[]>();
  const rss = new Map<number, number>();
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const stat = readFileSync(`/proc/${entry}/stat`, 'utf8');
      const ppid = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
      const status = readFileSync(`/proc/${entry}/status`, 'utf8');
      const kb = Number(/VmRSS:\s+(\d+)/.exec(status)?.[1] ?? 0);
      rss.set(Number(entry), kb * 1024);
      children.set(ppid, [...(children.get(ppid) ?? []), Number(entry)]);
    } catch {
      // the process exited while we looked
    }
  }
  let total = 0;
  const stack = [root];
  while (stack.length) {
    const pid = stack.pop()!;
    total += rss.get(pid) ?? 0;
    stack.push(...(children.get(pid) ?? []));
  }
  return { total, self: rss.get(root) ?? 0 };
}

/** Runs `pyml batch` as a user would, sampling the process tree's RSS every 50 ms. */
async function pymlBatch(bench: Case, file: string, db: string): Promise<{ rows: number; wall: number; seconds: number; batchRows: number; peakTree: number; peakDriver: number; timings: { stage: number; predict: number; write: number } }> {
  await rm(db, { force: true });
  const started = performance.now();
  const child = spawn(process.execPath, [await compiledPyml(), 'batch', bench.image, '--query', bench.query(file),
    '--into', 'predictions', '--db', db, '--keep', 'id', '--workers', String(WORKERS), '--json'], { env: { ...env, NODE_OPTIONS: '' }, stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  let err = '';
  child.stdout.on('data', (c: Buffer) => { out += c.toString(); });
  child.stderr.on('data', (c: Buffer) => { err += c.toString(); });
  let peakTree = 0;
  let peakDriver = 0;
  const timer = setInterval(() => {
    const { total, self } = treeRss(child.pid!);
    peakTree = Math.max(peakTree, total);
    peakDriver = Math.max(peakDriver, self);
  }, 50);
  const code = await new Promise<number | null>((resolve) => child.on('exit', resolve));
  clearInterval(timer);
  const wall = (performance.now() - started) / 1000;
  if (code !== 0) throw new Error(`pyml batch failed (${code}): ${err}`);
  const summary = JSON.parse(out) as { rows: number; seconds: number; threads: number | string; batchRows: number; timings: { stage: number; predict: number; write: number } };
  // --json prints threads as a number (a string before).
  if (String(summary.threads) !== String(THREADS)) throw new Error(`pyml batch ran its models with ${summary.threads} threads each, not ${THREADS}`);
  return { rows: summary.rows, wall, seconds: summary.seconds, batchRows: summary.batchRows, peakTree, peakDriver, timings: summary.timings };
}

const mb = (b: number) => `${(b / 1024 / 1024).toFixed(0)} MB`;
const rate = (rows: number, s: number) => `${Math.round(rows / s).toLocaleString('en-US')} rows/s`;
const median = <T>(xs: T[], key: (x: T) => number): T => [...xs].sort((a, b) => key(a) - key(b))[Math.floor(xs.length / 2)];
const loads: string[] = [];
const load = () => loads.push(readFileSync('/proc/loadavg', 'utf8').split(' ').slice(0, 3).join(' '));
/** `cpuSeconds`: CPU time of every thread over those seconds. */
type Timed = { rows: number; seconds: number; cpuSeconds: number };

let launcher: string | undefined;
/**
 * pyml as installed pyml runs it: every package's compiled JavaScript (dist/, built once here by tsc -b), loaded
 * without the checkout's `source` condition, so no TypeScript is compiled while pyml batch runs.
 */
async function compiledPyml(): Promise<string> {
  if (launcher) return launcher;
  const built = spawnSync(process.execPath, [path.join(REPO, 'node_modules/typescript/bin/tsc'), '-b', path.join(REPO, 'packages/cli/tsconfig.build.json')], { cwd: REPO, encoding: 'utf8' });
  // tsc emits the JavaScript even where a type is wrong (work in progress elsewhere in the checkout): say so, go on.
  if (built.status !== 0) console.error(`bench/batch: tsc -b reported errors:\n${built.stdout.split('\n').slice(0, 5).join('\n')}`);
  launcher = path.join(WORK, 'pyml-dist.mjs');
  await writeFile(launcher, `import { main } from ${JSON.stringify(path.join(REPO, 'packages/cli/dist/main.js'))};\nprocess.exitCode = await main(process.argv.slice(2));\n`);
  return launcher;
}

function build(project: string, out: string): void {
  const built = spawnSync(process.execPath, [PYML, 'build', project, '--out', out, '--json'], { env, encoding: 'utf8' });
  if (built.status !== 0) throw new Error(`build of ${project} failed: ${built.stderr}`);
}

/** The tabular MLP's project: the iris example with the MLP's weights and another name (the signature comes from the ONNX). */
async function tabularProject(): Promise<{ project: string; model: string }> {
  const project = path.join(WORK, 'tabular-project');
  return { project, model: await wideMlpProject(project) };
}

/** RUNS interleaved rounds (so a neighbour's load falls on both sides alike) of in-process, pyml batch and the floor. */
async function measure(bench: Case, file: string, runs: number) {
  const db = path.join(WORK, `${bench.name}.duckdb`);
  // Warm: the image is unpacked once, so no figure pays for it. Its batch size (pyml batch's default for this model)
  // is the baseline's and the floor's: the model's cost per row depends on it (large intermediates leave the caches).
  const { batchRows } = await pymlBatch(bench, file, db);
  const batches = await arrowBatches(bench, file, batchRows);
  const oneSession: Timed[] = [];
  const nSessions: Timed[] = [];
  const floor: Timed[] = [];
  const pyml: Awaited<ReturnType<typeof pymlBatch>>[] = [];
  for (let r = 0; r < runs; r++) {
    load();
    oneSession.push(await inProcess(bench, batches, 1, WORKERS * THREADS));
    nSessions.push(await inProcess(bench, batches, WORKERS, THREADS));
    pyml.push(await pymlBatch(bench, file, db));
    floor.push(await duckdbOnly(bench, file, path.join(WORK, 'floor.duckdb'), batchRows));
  }
  const one = median(oneSession, (x) => x.seconds);
  const many = median(nSessions, (x) => x.seconds);
  return { batchRows, oneSession, nSessions, floor, pyml, one, many, base: one.seconds <= many.seconds ? one : many, run: median(pyml, (x) => x.seconds), dd: median(floor, (x) => x.seconds) };
}

function report(title: string, m: Awaited<ReturnType<typeof measure>>): void {
  const ratio = (s: number) => `ratio ${(m.base.seconds / s).toFixed(2)}x`;
  const line = (label: string, rows: number, s: number, extra = '') => console.log(`  ${label.padEnd(62)} ${s.toFixed(3).padStart(7)} s  ${rate(rows, s).padStart(18)}  ${extra}`);
  console.log(`${title}; ${m.batchRows}-row Arrow batches (pyml batch's default for it) on every line`);
  line(`in-process onnxruntime-node, 1 session x ${WORKERS * THREADS} threads`, m.one.rows, m.one.seconds, m.base === m.one ? '(baseline)' : '');
  line(`in-process onnxruntime-node, ${WORKERS} sessions x ${THREADS} threads`, m.many.rows, m.many.seconds, m.base === m.many ? '(baseline)' : '');
  line('pyml batch, model phase (query run -> table written)  [aim]', m.run.rows, m.run.seconds, ratio(m.run.seconds));
  line('pyml batch, predict phase only (rows through workers)', m.run.rows, m.run.timings.predict, ratio(m.run.timings.predict));
  line('pyml batch, wall clock (CLI start to exit)', m.run.rows, m.run.wall, ratio(m.run.wall));
  line('floor: DuckDB alone (same query -> same table, no model)', m.dd.rows, m.dd.seconds, `${ratio(m.dd.seconds)} (pyml batch minus the model and its processes)`);
  // What these cores allow at best: the model's CPU (the in-process runs', the thriftier layout) and the DuckDB side's
  // (the floor's) both have to be spent, so even with processes, pipes and Arrow IPC free and a perfect overlap, the
  // model phase takes at least their sum / cores.
  const cpuOf = (xs: Timed[]) => median(xs, (x) => x.cpuSeconds).cpuSeconds;
  const cpu = Math.min(cpuOf(m.oneSession), cpuOf(m.nSessions)) + cpuOf(m.floor);
  console.log(`    ceiling here: model CPU + floor CPU = ${cpu.toFixed(2)} core-s; on ${CORES} cores at least ${(cpu / CORES).toFixed(3)} s: at most ${ratio(cpu / CORES)} with every cost of pyml batch's own at zero`);
  console.log(`    pyml batch phases: setup ${m.run.timings.stage.toFixed(3)} s, predict ${m.run.timings.predict.toFixed(3)} s, write ${m.run.timings.write.toFixed(3)} s`);
  const list = (xs: { seconds: number }[]) => xs.map((x) => x.seconds.toFixed(3)).join(' ');
  console.log(`    all runs (s): in-process 1x${WORKERS * THREADS} ${list(m.oneSession)}; ${WORKERS}x${THREADS} ${list(m.nSessions)}; model phase ${list(m.pyml)}; wall ${m.pyml.map((x) => x.wall.toFixed(2)).join(' ')}; floor ${list(m.floor)}`);
  console.log('');
}

await mkdir(WORK, { recursive: true });
const iris: Case = { ...IRIS, image: path.join(WORK, 'iris') };
if (ONLY !== 'mlp') {
  await rm(iris.image, { recursive: true, force: true });
  build(path.join(REPO, 'examples/onnx-iris'), iris.image);
}
const tab = await tabularProject();
const tabular: Case = { ...TABULAR, model: tab.model, image: path.join(WORK, 'tabular') };
await rm(tabular.image, { recursive: true, force: true });
build(tab.project, tabular.image);

const small = path.join(WORK, `rows-${ROWS}.parquet`);
const big = path.join(WORK, `rows-${BIG}.parquet`);
const tabularRows = path.join(WORK, `tabular-${ROWS}.parquet`);
if (ONLY !== 'mlp') await makeIrisData(small, ROWS);
if (ONLY === undefined) await makeIrisData(big, BIG);
if (ONLY !== 'iris') await tabular.makeData(tabularRows, ROWS);

const irisFigures = ONLY !== 'mlp' ? await measure(iris, small, RUNS) : undefined;
const tabularFigures = ONLY !== 'iris' ? await measure(tabular, tabularRows, MLP_RUNS) : undefined;
const run10 = ONLY === undefined ? await pymlBatch(iris, big, path.join(WORK, 'iris.duckdb')) : undefined;
load();

console.log(`bench/batch  ${WORKERS} workers, ${CORES} cores, medians of interleaved runs (iris ${RUNS}, tabular ${MLP_RUNS})`);
console.log(`  onnxruntime intra-op threads: pyml batch ${WORKERS} processes x ${THREADS} (PYML_ORT_THREADS=${THREADS}); in process ${WORKERS * THREADS} in total, best of 1 session x ${WORKERS * THREADS} and ${WORKERS} sessions x ${THREADS}`);
console.log(`  load average (1, 5, 15 min) before each round and at the end: ${loads.join(' | ')}`);
console.log(`  aim: pyml batch model phase >= 0.8x the in-process rows/s (the ratio on the "model phase" lines)`);
console.log('');
if (irisFigures) report(`iris: 4 features -> 3 probabilities + label, ${ROWS.toLocaleString('en-US')} rows (a ~40 ns/row model: only the data path is measured)`, irisFigures);
if (tabularFigures) report(`tabular MLP: ${MLP.inputs} features -> ${MLP.hidden} ReLU -> ${MLP.outputs}, ${ROWS.toLocaleString('en-US')} rows (~${Math.round((MLP.inputs * MLP.hidden + MLP.hidden * MLP.outputs) / 1000)}k multiply-adds a row)`, tabularFigures);
if (irisFigures && run10) {
  console.log('peak RSS of pyml batch on iris (driver + DuckDB, and the whole tree with the model processes); DuckDB --memory-limit 256MB');
  const run1 = irisFigures.run;
  console.log(`  ${ROWS.toLocaleString('en-US').padStart(10)} rows  driver ${mb(run1.peakDriver).padStart(7)}  tree ${mb(run1.peakTree).padStart(7)}  ${rate(run1.rows, run1.wall)}`);
  console.log(`  ${BIG.toLocaleString('en-US').padStart(10)} rows  driver ${mb(run10.peakDriver).padStart(7)}  tree ${mb(run10.peakTree).padStart(7)}  ${rate(run10.rows, run10.wall)}`);
  console.log(`  ${(BIG / ROWS).toFixed(0)}x the rows -> ${(run10.peakTree / run1.peakTree).toFixed(2)}x the peak tree RSS`);
}
