/**
 * bench/batch: `pyml batch` over 1M rows (workers = cores) side by side with the baseline measured in the same run:
 * in-process onnxruntime-node over the same Arrow record batches (same batch size, same model file). Then peak RSS of
 * the whole `pyml batch` process tree for 1M and 10M rows (it must not grow with the row count).
 *
 *   npx tsx bench/batch.ts [--rows 1000000] [--big 10000000] [--workers N]
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
import * as ort from 'onnxruntime-node';
import type { TensorSpec } from '@pyml/contract';
import { columnsToTensors, tensorsToRecordBatch } from '@pyml/runtime/arrow-tensors';
import { ChunkBatcher } from '../packages/batch/src/chunk-batcher.ts';

const REPO = fileURLToPath(new URL('../', import.meta.url));
const WORK = path.join(REPO, 'bench/.work/batch');
const PYML = path.join(REPO, 'packages/cli/bin/pyml.js');
const { values } = parseArgs({ options: { rows: { type: 'string', default: '1000000' }, big: { type: 'string', default: '10000000' }, workers: { type: 'string' } } });
const ROWS = Number(values.rows);
const BIG = Number(values.big);
const WORKERS = Number(values.workers ?? availableParallelism());
const BATCH_ROWS = 65536;
const INPUT: TensorSpec[] = [{ name: 'input', dtype: 'FP32', shape: [-1, 4] }];
const env = { ...process.env, PYML_CACHE_DIR: process.env.PYML_CACHE_DIR ?? path.join(WORK, 'cache'), NO_COLOR: '1' };

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

/** In process: Arrow batch → tensor → onnxruntime-node, as the model inside the image does, without processes or pipes. */
async function inProcess(file: string): Promise<{ rows: number; seconds: number }> {
  const batches = await arrowBatches(file);
  const session = await ort.InferenceSession.create(path.join(REPO, 'examples/onnx-iris/weights/model.onnx'));
  const started = performance.now();
  let rows = 0;
  let checksum = 0;
  for (const batch of batches) {
    const { input } = columnsToTensors(INPUT, batch, 'input');
    const out = await session.run({ input: new ort.Tensor('float32', input.data as Float32Array, input.shape) });
    checksum += Number((out.label.data as BigInt64Array)[0]);
    rows += batch.numRows;
  }
  return { rows, seconds: (performance.now() - started) / 1000 };
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
  const child = spawn(process.execPath, [PYML, 'batch', image, '--query', `SELECT id, sepal_length, sepal_width, petal_length, petal_width FROM read_parquet('${file}')`,
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
  const summary = JSON.parse(out) as { rows: number; seconds: number; timings: { stage: number; predict: number; write: number } };
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

const base = await inProcess(small);
const run1 = await pymlBatch(image, small, db);
const run10 = await pymlBatch(image, big, db);

console.log(`bench/batch  iris (onnx), ${WORKERS} workers = cores, ${BATCH_ROWS}-row Arrow batches, load average ${readFileSync('/proc/loadavg', 'utf8').split(' ').slice(0, 3).join(' ')}`);
console.log('');
console.log(`${ROWS.toLocaleString('en-US')} rows`);
console.log(`  in-process onnxruntime-node over the same Arrow batches  ${base.seconds.toFixed(2).padStart(7)} s  ${rate(base.rows, base.seconds)}`);
console.log(`  pyml batch, model phase (query run → table written)     ${run1.seconds.toFixed(2).padStart(7)} s  ${rate(run1.rows, run1.seconds)}  ratio ${(base.seconds / run1.seconds).toFixed(2)}x`);
console.log(`  pyml batch, wall clock (CLI start to exit)              ${run1.wall.toFixed(2).padStart(7)} s  ${rate(run1.rows, run1.wall)}  ratio ${(base.seconds / run1.wall).toFixed(2)}x`);
console.log(`  pyml batch, predict phase only (rows through workers)   ${run1.timings.predict.toFixed(2).padStart(7)} s  ${rate(run1.rows, run1.timings.predict)}  ratio ${(base.seconds / run1.timings.predict).toFixed(2)}x`);
console.log(`    phases: setup ${run1.timings.stage.toFixed(2)} s, predict ${run1.timings.predict.toFixed(2)} s, write ${run1.timings.write.toFixed(2)} s`);
console.log('');
console.log('peak RSS of pyml batch (driver + DuckDB, and the whole tree with the model processes); DuckDB --memory-limit 256MB');
console.log(`  ${ROWS.toLocaleString('en-US').padStart(10)} rows  driver ${mb(run1.peakDriver).padStart(7)}  tree ${mb(run1.peakTree).padStart(7)}  ${rate(run1.rows, run1.wall)}`);
console.log(`  ${BIG.toLocaleString('en-US').padStart(10)} rows  driver ${mb(run10.peakDriver).padStart(7)}  tree ${mb(run10.peakTree).padStart(7)}  ${rate(run10.rows, run10.wall)}`);
console.log(`  ${(BIG / ROWS).toFixed(0)}x the rows → ${(run10.peakTree / run1.peakTree).toFixed(2)}x the peak tree RSS`);
