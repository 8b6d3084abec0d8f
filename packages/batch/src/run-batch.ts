import { mkdtemp, rm } from 'node:fs/promises';
import { availableParallelism, tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { type DuckDBConnection, DuckDBInstance } from '@duckdb/node-api';
import duckdb from '@duckdb/node-bindings';
import type { RecordBatch } from 'apache-arrow';
import { bytesPerElement, elementCount } from '@pyml/contract';
import { columnsToTensors, tensorsToRecordBatch } from '@pyml/runtime/arrow-tensors';
import { ChunkBatcher, type InputBatch, NullInputError } from './chunk-batcher.ts';
import { type ColumnPlan, ColumnCheckError, planColumns } from './column-plan.ts';
import { quoteIdent, quoteString, sqlTypeFor } from './duckdb-types.ts';
import { type OutputTarget, commitOutput, describeTarget } from './output-target.ts';
import { TensorAppender } from './tensor-appender.ts';
import { entrypointCommand, readImageInfo, unpackImage } from '@pyml/launcher';
import { type BatchRange, BatchFailedError, WorkerPool, describeRange } from './worker-pool.ts';

export interface BatchOptions {
  /** The image: an OCI layout directory or a tarball. */
  image: string;
  query: string;
  target: OutputTarget;
  /** A DuckDB database the query may read (for --into it is the target's database). */
  db?: string;
  /** Query columns copied to the output unchanged, so predictions can be joined back. */
  keep?: string[];
  /** Model processes (default: the number of cores). */
  workers?: number;
  /** Rows per Arrow record batch sent to a model process (default: about 4 MiB of input, at most 65536 rows). */
  batchRows?: number;
  /** DuckDB's memory limit (default 256MB): staging spills to disk beyond it, so memory stays flat. */
  memoryLimit?: string;
  signal?: AbortSignal;
  onProgress?: (p: BatchProgress) => void;
  onStep?: (message: string) => void;
}

export interface BatchProgress {
  rows: number;
  total: number;
  seconds: number;
}

export interface BatchResult {
  rows: number;
  batches: number;
  seconds: number;
  output: string;
  workers: number;
  batchRows: number;
  packed?: ColumnPlan['packed'];
  /** Seconds per phase: the query into staging, the rows through the model, the target written. */
  timings: { stage: number; predict: number; write: number };
}

/** Ctrl-C (or the caller's abort) stopped the run; nothing was written. */
export class BatchInterruptedError extends Error {
  override name = 'BatchInterruptedError';
}

const SCRATCH = 'pyml_scratch';

/**
 * `pyml batch`: runs a SQL query through an image's model into a table or a Parquet dataset.
 *
 * 1. The query's columns are checked against the image's signature before anything runs (planColumns).
 * 2. The query runs once into a staging table in a scratch database (any column types, spilled to disk past the
 *    memory limit); its inputs stream from there as Arrow record batches through N `entrypoint batch` processes of
 *    the image, and the predictions are appended, in input order, to a second staging table.
 * 3. Only when every batch succeeded is the target written, from the two staging tables joined by position
 *    (--keep columns first, then the outputs), atomically (commitOutput). Any failure leaves the target as it was.
 */
export async function runBatch(options: BatchOptions): Promise<BatchResult> {
  const started = performance.now();
  const seconds = () => (performance.now() - started) / 1000;
  const step = options.onStep ?? (() => {});
  const keep = options.keep ?? [];
  const workers = options.workers ?? availableParallelism();
  if (!Number.isSafeInteger(workers) || workers < 1) throw new Error(`--workers must be a positive integer, got ${workers}`);

  const { manifest } = await readImageInfo(options.image);
  const signature = manifest.signature;
  const dbPath = options.target.kind === 'table' ? options.target.db : options.db;
  const instance = await DuckDBInstance.create(dbPath ? resolve(dbPath) : ':memory:');
  const connection = await instance.connect();
  const scratchDir = await mkdtemp(join(tmpdir(), 'pyml-batch-scratch-'));
  let pool: WorkerPool | undefined;
  let reader: DuckDBConnection | undefined;
  try {
    await connection.run(`SET memory_limit = ${quoteString(options.memoryLimit ?? '256MB')}`);
    await connection.run(`SET temp_directory = ${quoteString(join(scratchDir, 'spill'))}`);
    // Return freed memory to the OS sooner, so the process's resident size tracks DuckDB's limit.
    await connection.run(`SET allocator_flush_threshold = '32MB'`);

    // 1. Columns against the signature, before any row runs.
    const prepared = await connection.prepare(options.query).catch((error: Error) => {
      throw new Error(`the query does not compile: ${error.message}`);
    });
    const columns = Array.from({ length: prepared.columnCount }, (_, i) => ({ name: prepared.columnName(i), type: prepared.columnType(i) }));
    const plan = planColumns(signature, columns, keep);
    if (options.target.kind === 'parquet') {
      const names = [...keep, ...signature.outputs.map((o) => o.name)];
      const missing = options.target.partitionBy.filter((p) => !names.includes(p));
      if (missing.length) throw new ColumnCheckError(missing.map((p) => `--partition-by column '${p}' is neither a --keep column nor a model output (${names.join(', ')})`));
    }
    if (plan.packed) step(`packing columns ${plan.packed.columns.join(', ')} into input '${plan.packed.input}'`);

    // 2. The image, unpacked once per digest.
    if (options.signal?.aborted) throw new BatchInterruptedError('interrupted');
    step(`unpacking ${options.image}`);
    const image = await unpackImage(options.image);

    // The model processes start (load weights, init) while DuckDB stages the query.
    // N processes share the cores: each model gets cores/N intra-op threads unless the user chose (PYML_ORT_THREADS is
    // the ONNX plugin's knob, OMP_NUM_THREADS most others'), so N processes do not each start a thread per core.
    const command = entrypointCommand(image, ['batch']);
    const threads = String(Math.max(1, Math.floor(availableParallelism() / workers)));
    for (const knob of ['PYML_ORT_THREADS', 'PYML_TORCH_THREADS', 'OMP_NUM_THREADS']) if (process.env[knob] === undefined) command.env[knob] = threads;
    pool = new WorkerPool(workers, command);
    step('staging the query');
    const stageStarted = performance.now();
    await connection.run(`ATTACH ${quoteString(join(scratchDir, 'scratch.duckdb'))} AS ${SCRATCH}`);
    await connection.run(`CREATE TABLE ${SCRATCH}.src AS ${options.query}`);
    const total = Number((await connection.runAndReadAll(`SELECT count(*) FROM ${SCRATCH}.src`)).getRows()[0][0]);
    const outputs = signature.outputs;
    await connection.run(`CREATE TABLE ${SCRATCH}.pred (${outputs.map((o) => `${quoteIdent(o.name)} ${sqlTypeFor(o.dtype, o.shape.slice(1))}`).join(', ')})`);

    const stageSeconds = (performance.now() - stageStarted) / 1000;
    const predictStarted = performance.now();
    const inputSpecs = plan.inputs.map((i) => i.spec);
    const rowBytes = inputSpecs.reduce((n, s) => n + elementCount(s.shape.slice(1)) * (bytesPerElement(s.dtype) || 16), 0);
    const batchRows = options.batchRows ?? Math.max(2048, Math.min(65536, Math.floor((4 << 20) / Math.max(rowBytes, 1) / 2048) * 2048));

    step(`running ${total} rows through ${workers} model process${workers === 1 ? '' : 'es'}`);
    const activePool = pool;
    reader = await instance.connect();
    const appender = await connection.createAppender('pred', 'main', SCRATCH);
    const sink = new TensorAppender(appender, outputs);
    const batcher = new ChunkBatcher(inputSpecs, batchRows, 1);
    const guardOrder = !columns.some((c) => c.name.toLowerCase() === 'rowid');
    const maxInFlight = workers * 2;
    const queue: { range: BatchRange; result: Promise<RecordBatch> }[] = [];
    let done = 0;
    let batches = 0;
    let lastProgress = 0;

    const interrupted = () => options.signal?.aborted;
    const drainOne = async () => {
      const { range, result } = queue.shift()!;
      let out: RecordBatch;
      try {
        out = await result;
      } catch (error) {
        throw activePool.failure ?? error;
      }
      let tensors;
      try {
        tensors = columnsToTensors(outputs, out, 'output');
      } catch (error) {
        throw new BatchFailedError(range, (error as Error).message, -1);
      }
      sink.append(tensors, range.rows);
      done += range.rows;
      batches++;
      const now = performance.now();
      if (options.onProgress && now - lastProgress > 100) {
        lastProgress = now;
        options.onProgress({ rows: done, total, seconds: seconds() });
      }
    };
    const dispatch = async (batch: InputBatch) => {
      if (interrupted()) throw new BatchInterruptedError('interrupted');
      const range: BatchRange = { index: batch.index, firstRow: batch.firstRow, rows: batch.rows };
      const result = activePool.submit(tensorsToRecordBatch(inputSpecs, batch.tensors), range);
      result.catch(() => {});
      queue.push({ range, result });
      while (queue.length >= maxInFlight) await drainOne();
    };

    // The staging table's rowid guards the order the positional join relies on (unless a query column shadows it).
    const stream = await reader.stream(`SELECT ${guardOrder ? 'rowid' : '0::BIGINT'}, ${plan.inputs.map((i) => `${i.sql} AS ${quoteIdent(i.spec.name)}`).join(', ')} FROM ${SCRATCH}.src`);
    let expectedRow = 0;
    for (;;) {
      let chunk;
      try {
        chunk = await stream.fetchChunk();
      } catch (error) {
        // A cast that fails at run time (a LIST of the wrong length) is a bad row in the current batch.
        throw new BatchFailedError({ index: batches + queue.length, firstRow: expectedRow, rows: 0 }, `DuckDB could not read the inputs: ${(error as Error).message}`, -1);
      }
      if (!chunk || chunk.rowCount === 0) break;
      // The staging table is read in insertion order; the positional join at the end depends on it.
      const rowids = duckdb.vector_get_data(duckdb.data_chunk_get_vector(chunk.chunk, 0), chunk.rowCount * 8);
      const first = Number(new BigInt64Array(rowids.buffer, rowids.byteOffset, 1)[0]);
      if (guardOrder && first !== expectedRow) throw new Error(`internal: staged rows came back out of order (row ${first} where ${expectedRow} was expected)`);
      expectedRow += chunk.rowCount;
      let ready: InputBatch[];
      try {
        ready = batcher.add(chunk);
      } catch (error) {
        if (error instanceof NullInputError) {
          const index = Math.floor(error.row / batchRows);
          throw new BatchFailedError({ index, firstRow: index * batchRows, rows: Math.min(batchRows, total - index * batchRows) }, `${error.message}`, -1);
        }
        throw error;
      }
      for (const batch of ready) await dispatch(batch);
    }
    const last = batcher.flush();
    if (last) await dispatch(last);
    while (queue.length) await drainOne();
    await pool.close();
    pool = undefined;
    appender.closeSync();
    options.onProgress?.({ rows: done, total, seconds: seconds() });
    if (done !== total) throw new Error(`internal: ${done} predictions for ${total} rows`);

    const predictSeconds = (performance.now() - predictStarted) / 1000;
    const writeStarted = performance.now();
    // 3. Everything succeeded: write the target.
    if (interrupted()) throw new BatchInterruptedError('interrupted');
    step(`writing ${describeTarget(options.target)}`);
    const select = `SELECT ${[...keep.map((k) => `s.${quoteIdent(k)}`), ...outputs.map((o) => `p.${quoteIdent(o.name)}`)].join(', ')} FROM ${SCRATCH}.src s POSITIONAL JOIN ${SCRATCH}.pred p`;
    reader.closeSync();
    reader = undefined;
    await commitOutput(connection, options.target, select);
    return {
      rows: done, batches, seconds: seconds(), workers, batchRows,
      timings: { stage: stageSeconds, predict: predictSeconds, write: (performance.now() - writeStarted) / 1000 },
      output: options.target.kind === 'table' ? `${resolve(options.target.db)}#${options.target.table}` : resolve(options.target.dir),
      ...(plan.packed ? { packed: plan.packed } : {}),
    };
  } catch (error) {
    if (options.signal?.aborted && !(error instanceof ColumnCheckError)) {
      const failure = error instanceof BatchFailedError ? error : undefined;
      throw new BatchInterruptedError(`interrupted${failure?.range ? ` during ${describeRange(failure.range)}` : ''}; ${describeTarget(options.target)} was left as it was`);
    }
    throw error;
  } finally {
    await pool?.kill();
    reader?.closeSync();
    connection.closeSync();
    instance.closeSync();
    await rm(scratchDir, { recursive: true, force: true });
  }
}
