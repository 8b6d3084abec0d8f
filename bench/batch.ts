/**
 * bench/batch: `pyml batch` over 1M rows (workers = cores) side by side with the baseline measured in the same run:
 * in-process onnxruntime-node over the same Arrow record batches (same batch size, same model file, the same
 * onnxruntime thread count in total). Then peak RSS of the whole `pyml batch` process tree for 1M and 10M rows (it
 * must not grow with the row count).
 *
 * The figure held against the aim (pyml batch at >= 0.8x the in-process rows/s) is the model phase: from runBatch's
 * start (image read, DuckDB opened, the query started) until the target table is committed. The model processes are
 * started by the CLI before it loads DuckDB and Arrow, so their start-up overlaps the CLI's and is in the wall clock,
 * not in the model phase. Each side runs RUNS times and the median is used. A third line shows the floor of the
 * DuckDB side alone: the same query read and the same output table written, in process, with no model at all.
 *
 *   npx tsx bench/batch.ts [--rows 1000000] [--big 10000000] [--workers N] [--runs 5]
 *
 * Data is generated with DuckDB range() into Parquet under bench/.work/batch.
 */
import { spawn, spawnSync } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import { mkdir, rm } from 'node:fs/promises';
import { availableParallelism } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { DuckDBInstance } from '@duckdb/node-api';
import { RowWriter } from '../packages/batch/src/row-writer.ts';
import { TableInserter } from '../packages/batch/src/table-inserter.ts';
import * as ort from 'onnxruntime-node';
import type { TensorSpec } from '@pyml/contract';
import { columnsToTensors, tensorsToRecordBatch } from '@pyml/runtime/arrow-tensors';
import { ChunkBatcher } from '../packages/batch/src/chunk-batcher.ts';

const REPO = fileURLToPath(new URL('../', import.meta.url));
const WORK = path.join(REPO, 'bench/.work/batch');
const PYML = path.join(REPO, 'packages/cli/bin/pyml.js');
const { values } = parseArgs({ options: { rows: { type: 'string', default: '1000000' }, big: { type: 'string', default: '10000000' }, workers: { type: 'string' }, runs: { type: 'string', default: '5' } } });
const ROWS = Number(values.rows);
const BIG = Number(values.big);
const CORES = availableParallelism();
const WORKERS = Number(values.workers ?? CORES);
const RUNS = Math.max(1, Number(values.runs));
const BATCH_ROWS = 65536;
// onnxruntime intra-op threads: pyml batch gives each of its N processes cores/N (PYML_ORT_THREADS, set here
// explicitly); the baseline gets the same total, as one session with all of them or as N sessions run side by side.
const THREADS = Math.max(1, Math.floor(CORES / WORKERS));
const INPUT: TensorSpec[] = [{ name: 'input', dtype: 'FP32', shape: [-1, 4] }];
const OUTPUTS: TensorSpec[] = [{ name: 'probabilities', dtype: 'FP32', shape: [-1, 3] }, { name: 'label', dtype: 'INT64', shape: [-1] }];
const QUERY = (file: string) => `SELECT id, sepal_length, sepal_width, petal_length, petal_width FROM read_parquet('${file}')`;
const env = { ...process.env, PYML_CACHE_DIR: process.env.PYML_CACHE_DIR ?? path.join(WORK, 'cache'), NO_COLOR: '1', PYML_ORT_THREADS: String(THREADS) };

async function makeData(file: string, rows: number): Promise<void> {
  const instance = await DuckDBInstance.create(':memory:');
  const c = await instance.connect();
  await c.run(`COPY (SELECT range AS id,
      (4.3 + (range * 37 % 36) / 10.0)::FLOAT AS sepal_length, (2.0 + (range * 11 % 24) / 10.0)::FLOAT AS sepal_width,
      (1.0 + (range * 53 % 59) / 10.0)::FLOAT AS petal_length, (0.1 + (range * 7 % 24) / 10.0)::FLOAT AS petal_width
    FROM range(${rows})) TO '${file}' (FORMAT parquet)`);
  c.closeSync();
  instance.closeSync();
}

/** The same Arrow record batches pyml batch sends its workers: DuckDB chunks → FixedSizeList<4> batches of 65536 rows. */
async function arrowBatches(file: string) {
  const instance = await DuckDBInstance.create(':memory:');
  const c = await instance.connect();
  const stream = await c.stream(`SELECT [sepal_length, sepal_width, petal_length, petal_width]::FLOAT[4] AS input FROM read_parquet('${file}')`);
  const batcher = new ChunkBatcher(INPUT, BATCH_ROWS);
  const batches = [];
  for (;;) {
    const chunk = await stream.fetchChunk();
    if (!chunk || chunk.rowCount === 0) break;
    for (const b of batcher.add(chunk)) batches.push(tensorsToRecordBatch(INPUT, b.tensors));
  }
  const last = batcher.flush();
  if (last) batches.push(tensorsToRecordBatch(INPUT, last.tensors));
  c.closeSync();
  instance.closeSync();
  return batches;
}

const MODEL = path.join(REPO, 'examples/onnx-iris/weights/model.onnx');

/**
 * In process: Arrow batch → tensor → onnxruntime-node, as the model inside the image does, without processes or pipes.
 * `sessions` sessions of `threads` intra-op threads each; batches go round-robin, `sessions` runs at a time.
 */
async function inProcess(batches: Awaited<ReturnType<typeof arrowBatches>>, sessions: number, threads: number): Promise<{ rows: number; seconds: number }> {
  const models = await Promise.all(Array.from({ length: sessions }, () => ort.InferenceSession.create(MODEL, { intraOpNumThreads: threads })));
  const started = performance.now();
  let rows = 0;
  let checksum = 0;
  await Promise.all(models.map(async (session, k) => {
    for (let i = k; i < batches.length; i += sessions) {
      const { input } = columnsToTensors(INPUT, batches[i], 'input');
      const out = await session.run({ input: new ort.Tensor('float32', input.data as Float32Array, input.shape) });
      checksum += Number((out.label.data as BigInt64Array)[0]);
      rows += batches[i].numRows;
    }
  }));
  const seconds = (performance.now() - started) / 1000;
  await Promise.all(models.map((m) => m.release()));
  return { rows, seconds };
}

/**
 * The DuckDB side alone, in process: the query pyml batch runs (inputs packed, --keep id) streamed and batched, and
 * the same output table (id, probabilities FLOAT[3], label BIGINT) written the way pyml batch writes it, with
 * constant predictions and no model: the floor under pyml batch's model phase on this machine.
 */
async function duckdbOnly(file: string, db: string): Promise<{ rows: number; seconds: number }> {
  await rm(db, { force: true });
  const started = performance.now();
  const instance = await DuckDBInstance.create(db);
  const c = await instance.connect();
  const reader = await instance.connect();
  await reader.run(`SET streaming_buffer_size = '16MB'`);
  const stream = await reader.stream(`SELECT q.id, [q.sepal_length, q.sepal_width, q.petal_length, q.petal_width]::FLOAT[4] AS pyml_input_0 FROM (${QUERY(file)}) AS q`);
  const writer = new RowWriter(stream.columnTypes().slice(0, 1), OUTPUTS);
  const inserter = new TableInserter(c, writer, 'out', BATCH_ROWS);
  await c.run('BEGIN TRANSACTION');
  await c.run('CREATE TABLE out (id BIGINT, probabilities FLOAT[3], label BIGINT)');
  const batcher = new ChunkBatcher(INPUT, BATCH_ROWS, 1);
  const predict = (rows: number) => {
    writer.addPredictions({ probabilities: { dtype: 'FP32', shape: [rows, 3], data: new Float32Array(rows * 3) }, label: { dtype: 'INT64', shape: [rows], data: new BigInt64Array(rows) } }, rows);
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
  reader.closeSync();
  c.closeSync();
  instance.closeSync();
  return { rows, seconds };
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
async function pymlBatch(image: string, file: string, db: string): Promise<{ rows: number; wall: number; seconds: number; peakTree: number; peakDriver: number; timings: { stage: number; predict: number; write: number } }> {
  await rm(db, { force: true });
  const started = performance.now();
  const child = spawn(process.execPath, [PYML, 'batch', image, '--query', QUERY(file),
    '--into', 'predictions', '--db', db, '--keep', 'id', '--workers', String(WORKERS), '--json'], { env, stdio: ['ignore', 'pipe', 'pipe'] });
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
  const summary = JSON.parse(out) as { rows: number; seconds: number; threads: string; timings: { stage: number; predict: number; write: number } };
  if (summary.threads !== String(THREADS)) throw new Error(`pyml batch ran its models with ${summary.threads} threads each, not ${THREADS}`);
  return { rows: summary.rows, wall, seconds: summary.seconds, peakTree, peakDriver, timings: summary.timings };
}

const mb = (b: number) => `${(b / 1024 / 1024).toFixed(0)} MB`;
const rate = (rows: number, s: number) => `${Math.round(rows / s).toLocaleString('en-US')} rows/s`;

await mkdir(WORK, { recursive: true });
const image = path.join(WORK, 'iris');
await rm(image, { recursive: true, force: true });
const built = spawnSync(process.execPath, [PYML, 'build', path.join(REPO, 'examples/onnx-iris'), '--out', image, '--json'], { env, encoding: 'utf8' });
if (built.status !== 0) throw new Error(`build failed: ${built.stderr}`);
const small = path.join(WORK, `rows-${ROWS}.parquet`);
const big = path.join(WORK, `rows-${BIG}.parquet`);
await makeData(small, ROWS);
await makeData(big, BIG);
const db = path.join(WORK, 'out.duckdb');

// Warm: unpack the image once, so neither figure pays for it.
await pymlBatch(image, small, db);

const median = <T>(xs: T[], key: (x: T) => number): T => [...xs].sort((a, b) => key(a) - key(b))[Math.floor(xs.length / 2)];
const loads: string[] = [];
const load = () => loads.push(readFileSync('/proc/loadavg', 'utf8').split(' ').slice(0, 3).join(' '));
const batches = await arrowBatches(small);
const oneSession: { rows: number; seconds: number }[] = [];
const nSessions: { rows: number; seconds: number }[] = [];
const floor: { rows: number; seconds: number }[] = [];
const runs: Awaited<ReturnType<typeof pymlBatch>>[] = [];
// Interleaved, so a neighbour's load falls on both sides alike.
for (let r = 0; r < RUNS; r++) {
  load();
  oneSession.push(await inProcess(batches, 1, WORKERS * THREADS));
  nSessions.push(await inProcess(batches, WORKERS, THREADS));
  runs.push(await pymlBatch(image, small, db));
  floor.push(await duckdbOnly(small, path.join(WORK, 'floor.duckdb')));
}
load();
const one = median(oneSession, (x) => x.seconds);
const many = median(nSessions, (x) => x.seconds);
const base = one.seconds <= many.seconds ? one : many;
const run1 = median(runs, (x) => x.seconds);
const dd = median(floor, (x) => x.seconds);
const run10 = await pymlBatch(image, big, db);
load();

const ratio = (s: number) => `ratio ${(base.seconds / s).toFixed(2)}x`;
const line = (label: string, rows: number, s: number, extra = '') => console.log(`  ${label.padEnd(62)} ${s.toFixed(3).padStart(7)} s  ${rate(rows, s).padStart(18)}  ${extra}`);
console.log(`bench/batch  iris (onnx), ${WORKERS} workers, ${CORES} cores, ${BATCH_ROWS}-row Arrow batches, median of ${RUNS} interleaved runs`);
console.log(`  onnxruntime intra-op threads: pyml batch ${WORKERS} processes x ${THREADS} (PYML_ORT_THREADS=${THREADS}); in process ${WORKERS * THREADS} in total, best of 1 session x ${WORKERS * THREADS} and ${WORKERS} sessions x ${THREADS}`);
console.log(`  load average (1, 5, 15 min) before each round and at the end: ${loads.join(' | ')}`);
console.log(`  aim: pyml batch model phase >= 0.8x the in-process rows/s (the ratio on the "model phase" line)`);
console.log('');
console.log(`${ROWS.toLocaleString('en-US')} rows`);
line(`in-process onnxruntime-node, 1 session x ${WORKERS * THREADS} threads`, one.rows, one.seconds, base === one ? '(baseline)' : '');
line(`in-process onnxruntime-node, ${WORKERS} sessions x ${THREADS} threads`, many.rows, many.seconds, base === many ? '(baseline)' : '');
line('pyml batch, model phase (query run -> table written)  [aim]', run1.rows, run1.seconds, ratio(run1.seconds));
line('pyml batch, predict phase only (rows through workers)', run1.rows, run1.timings.predict, ratio(run1.timings.predict));
line('pyml batch, wall clock (CLI start to exit)', run1.rows, run1.wall, ratio(run1.wall));
line('floor: DuckDB alone (same query -> same table, no model)', dd.rows, dd.seconds, `${ratio(dd.seconds)} (pyml batch minus the model and its processes)`);
console.log(`    pyml batch phases: setup ${run1.timings.stage.toFixed(3)} s, predict ${run1.timings.predict.toFixed(3)} s, write ${run1.timings.write.toFixed(3)} s`);
console.log(`    all runs (s): in-process 1x${WORKERS * THREADS} ${oneSession.map((x) => x.seconds.toFixed(3)).join(' ')}; ${WORKERS}x${THREADS} ${nSessions.map((x) => x.seconds.toFixed(3)).join(' ')}; model phase ${runs.map((x) => x.seconds.toFixed(3)).join(' ')}; wall ${runs.map((x) => x.wall.toFixed(2)).join(' ')}; floor ${floor.map((x) => x.seconds.toFixed(3)).join(' ')}`);
console.log('');
console.log('peak RSS of pyml batch (driver + DuckDB, and the whole tree with the model processes); DuckDB --memory-limit 256MB');
console.log(`  ${ROWS.toLocaleString('en-US').padStart(10)} rows  driver ${mb(run1.peakDriver).padStart(7)}  tree ${mb(run1.peakTree).padStart(7)}  ${rate(run1.rows, run1.wall)}`);
console.log(`  ${BIG.toLocaleString('en-US').padStart(10)} rows  driver ${mb(run10.peakDriver).padStart(7)}  tree ${mb(run10.peakTree).padStart(7)}  ${rate(run10.rows, run10.wall)}`);
console.log(`  ${(BIG / ROWS).toFixed(0)}x the rows -> ${(run10.peakTree / run1.peakTree).toFixed(2)}x the peak tree RSS`);
