import { randomBytes } from 'node:crypto';
import { rm } from 'node:fs/promises';
import { availableParallelism } from 'node:os';
import { join, resolve } from 'node:path';
import { type DuckDBConnection, DuckDBInstance } from '@duckdb/node-api';
import { bytesPerElement, elementCount, type Signature, type TensorSpec } from '@pyml/contract';
import { BatchInterruptedError } from './batch-interrupted.ts';
import { CleanupStack } from './cleanup-stack.ts';
import { ownCpuSeconds } from './cpu-seconds.ts';
import { type ColumnPlan, ColumnCheckError, planColumns } from './column-plan.ts';
import { quoteIdent, quoteString, sqlTypeFor } from './duckdb-types.ts';
import { type OutputTarget, copyPartStatement, describeTarget, openDatasetTemp, qualifiedTable } from './output-target.ts';
import { RowWriter } from './row-writer.ts';
import { pipeRows } from './row-pipeline.ts';
import { TableInserter } from './table-inserter.ts';
import { type ModelProcesses, startModelProcesses } from './model-processes.ts';
import { BatchFailedError, WorkerPool, describeRange } from './worker-pool.ts';
import { createScratchDir, sweepStaleScratchDirs } from './scratch-dir.ts';

export { BatchInterruptedError };

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
  /**
   * The image's model processes, already started by the caller (startModelProcesses) so that their start-up overlaps
   * the caller's own; runBatch owns them from then on and stops them when it ends. Default: started here, first.
   */
  models?: ModelProcesses;
  /** Rows per Arrow record batch sent to a model process (default: about 512 KiB of input, 2048 to 65536 rows). */
  batchRows?: number;
  /** DuckDB's memory limit (default 256MB): the query and the output table spill to disk beyond it. */
  memoryLimit?: string;
  signal?: AbortSignal;
  onProgress?: (p: BatchProgress) => void;
  onStep?: (message: string) => void;
}

export interface BatchProgress {
  rows: number;
  /** The query's row count once known (counted beside the run), for the ETA. */
  total?: number;
  seconds: number;
}

export interface BatchResult {
  rows: number;
  batches: number;
  seconds: number;
  output: string;
  workers: number;
  /** onnxruntime intra-op threads per model process (PYML_ORT_THREADS as the processes got it). */
  threads: string;
  batchRows: number;
  packed?: ColumnPlan['packed'];
  /** Seconds per phase: the query started and the output table made, the rows through the model, the target written. */
  timings: { stage: number; predict: number; write: number };
  /** CPU seconds, where they went (what bench/peers reports per batch). */
  cpu: BatchCpu;
}

export interface BatchCpu {
  /** This process before runBatch began: for the CLI, its start-up and module loading. */
  before: number;
  /** This process (DuckDB's threads included) in each phase, as in `timings`, and from the start of the run. */
  front: { setup: number; stage: number; predict: number; write: number };
  /** The model processes (Linux only): until each one's first answer (less a batch), and the rest: the batches. */
  workers?: { startup: number; batches: number };
  /** CPU milliseconds per batch while the rows ran: this process (reading the query, sending, writing the output) and the model processes (decoding, the model, encoding). */
  perBatchMs: { front: number; workers?: number };
}

/**
 * `pyml batch`: runs a SQL query through an image's model into a table or a Parquet dataset.
 *
 * 1. The query's columns are checked against the image's signature before anything runs (planColumns).
 * 2. The query streams once, in order (no staged copy); its inputs go as Arrow record batches through N
 *    `entrypoint batch` processes of the image (started first, so they load while DuckDB starts), and each chunk's
 *    --keep columns, beside the predictions for its rows (RowWriter), are written by DuckDB itself (TableInserter) as
 *    the predictions come back in input order: into a new table (--into), or as the Parquet files of a new dataset in
 *    a temp directory (--out).
 * 3. Only when every batch succeeded does that become the target: the table renamed over it in the same transaction
 *    (--into), the temp directory renamed into place (--out). Any failure leaves the target as it was.
 */
export async function runBatch(options: BatchOptions): Promise<BatchResult> {
  const started = performance.now();
  const cpuBefore = ownCpuSeconds();
  const seconds = () => (performance.now() - started) / 1000;
  const step = options.onStep ?? (() => {});
  const keep = options.keep ?? [];
  const models = await modelProcessesFor(options, step);
  const workers = models.processes.length;
  const signature = models.image.manifest.signature;
  const interrupted = () => options.signal?.aborted;
  const cleanup = new CleanupStack();
  cleanup.defer(() => models.kill());
  try {
    const { instance, connection } = await openDatabase(options, cleanup);

    // 1. Columns against the signature, before any row runs.
    const plan = await checkColumns(connection, options, signature, keep);
    if (plan.packed) step(`packing columns ${plan.packed.columns.join(', ')} into input '${plan.packed.input}'`);

    // 2. The rows go to the model processes (started above, and loading meanwhile).
    if (interrupted()) throw new BatchInterruptedError('interrupted');
    const pool = new WorkerPool(models.processes);
    cleanup.defer(() => pool.kill());
    step('starting the query');
    const stageStarted = performance.now();
    const cpuStage = ownCpuSeconds();
    const inputSpecs = plan.inputs.map((i) => i.spec);
    const batchRows = options.batchRows ?? batchRowsFor(inputSpecs);
    const query = await openQuery(instance, connection, options.query, plan, keep, workers, cleanup);
    const writer = new RowWriter(query.keepTypes, signature.outputs);
    // INSERTs of at least 128Ki rows (a statement and its table-function scan cost the same whatever the batch size).
    const insertRows = Math.max(batchRows, 131072);
    const output = await openOutput(connection, options.target, query.source, keep, signature.outputs, cleanup);
    const inserter = new TableInserter(connection, writer, output.into, insertRows);
    // Registered before the transaction begins (the table function is this connection's, not the database's), and
    // waited for before a rollback.
    cleanup.defer(() => inserter.settle().catch(() => {}));
    await output.begin();
    const stageSeconds = (performance.now() - stageStarted) / 1000;

    const total = options.onProgress ? countRowsBeside(instance, query.source) : () => undefined;
    const predictStarted = performance.now();
    const cpuPredict = ownCpuSeconds();
    step(`running the rows through ${workers} model process${workers === 1 ? '' : 'es'}`);
    const { read, batches } = await pipeRows({
      stream: query.stream, instance, source: query.source, inputSpecs, outputs: signature.outputs, keepCount: keep.length,
      batchRows, insertRows, workers, pool, writer, inserter, signal: options.signal,
      onProgress: options.onProgress && ((rows) => options.onProgress!({ rows, total: total(), seconds: seconds() })),
    });
    // The last rows go into the table while the model processes exit (both must succeed before anything commits).
    await Promise.all([pool.close(), inserter.flush(options.target.kind === 'parquet')]);
    query.close();
    const done = writer.written;
    options.onProgress?.({ rows: done, total: done, seconds: seconds() });
    if (done !== read) throw new Error(`internal: ${done} rows written for ${read} rows read`);
    await connection.run(`SET threads = ${query.duckdbThreads}`);
    const predictSeconds = (performance.now() - predictStarted) / 1000;
    const cpuWrite = ownCpuSeconds();

    // 3. Everything succeeded: the target takes the new rows.
    const writeStarted = performance.now();
    if (interrupted()) throw new BatchInterruptedError('interrupted');
    step(`writing ${describeTarget(options.target)}`);
    await output.commit();
    const workersCpu = pool.cpu();
    const cpu: BatchCpu = {
      before: cpuBefore,
      front: { setup: cpuStage - cpuBefore, stage: cpuPredict - cpuStage, predict: cpuWrite - cpuPredict, write: ownCpuSeconds() - cpuWrite },
      ...(workersCpu ? { workers: { startup: workersCpu.startup, batches: workersCpu.batches } } : {}),
      perBatchMs: { front: batches ? ((cpuWrite - cpuPredict) / batches) * 1000 : 0, ...(workersCpu ? { workers: workersCpu.perBatch * 1000 } : {}) },
    };
    return {
      rows: done, batches, seconds: seconds(), workers, threads: models.threads, batchRows,
      timings: { stage: stageSeconds, predict: predictSeconds, write: (performance.now() - writeStarted) / 1000 }, cpu,
      output: options.target.kind === 'table' ? `${resolve(options.target.db)}#${options.target.table}` : resolve(options.target.dir),
      ...(plan.packed ? { packed: plan.packed } : {}),
    };
  } catch (error) {
    throw asInterruption(error, options);
  } finally {
    await cleanup.run();
  }
}

/** The model processes start first (node, weights, init take a while), loading while DuckDB starts the query. */
async function modelProcessesFor(options: BatchOptions, step: (message: string) => void): Promise<ModelProcesses> {
  if (options.models) {
    if (options.workers !== undefined && options.workers !== options.models.processes.length) {
      await options.models.kill();
      throw new Error(`internal: ${options.models.processes.length} model processes started for --workers ${options.workers}`);
    }
    return options.models;
  }
  if (options.signal?.aborted) throw new BatchInterruptedError('interrupted');
  step(`unpacking ${options.image}`);
  return startModelProcesses(options.image, options.workers ?? availableParallelism());
}

/**
 * The DuckDB the query runs on (the target's database for --into), spilling into a scratch directory of this run.
 * Closed, then the scratch directory removed, when the run ends.
 */
async function openDatabase(options: BatchOptions, cleanup: CleanupStack): Promise<{ instance: DuckDBInstance; connection: DuckDBConnection; scratchDir: string }> {
  await sweepStaleScratchDirs();
  const scratchDir = await createScratchDir();
  cleanup.defer(() => rm(scratchDir, { recursive: true, force: true }));
  const dbPath = options.target.kind === 'table' ? options.target.db : options.db;
  const instance = await DuckDBInstance.create(dbPath ? resolve(dbPath) : ':memory:').catch((error: Error) => {
    throw dbPath ? new Error(`--db ${resolve(dbPath)}: ${error.message.replace(/^IO Error: /, '')}`) : error;
  });
  cleanup.defer(() => instance.closeSync());
  const connection = await instance.connect();
  cleanup.defer(() => connection.closeSync());
  await connection.run(`SET memory_limit = ${quoteString(options.memoryLimit ?? '256MB')}`);
  await connection.run(`SET temp_directory = ${quoteString(join(scratchDir, 'spill'))}`);
  // Return freed memory to the OS sooner, so the process's resident size tracks DuckDB's limit.
  await connection.run(`SET allocator_flush_threshold = '32MB'`);
  return { instance, connection, scratchDir };
}

/** The query's columns against the signature (and --partition-by against the output's columns). */
async function checkColumns(connection: DuckDBConnection, options: BatchOptions, signature: Signature, keep: string[]): Promise<ColumnPlan> {
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
  return plan;
}

/**
 * About 512 KiB of input a batch: a model's intermediates grow with the batch (the tabular MLP's hidden layer is
 * 32x its input), and once they outgrow the caches every row costs more (onnxruntime spends 2.7x the CPU on that
 * MLP at 32768 rows as at 4096); the per-batch cost of the pipes and Arrow is small down to a few thousand rows.
 */
function batchRowsFor(inputSpecs: TensorSpec[]): number {
  const rowBytes = inputSpecs.reduce((n, s) => n + elementCount(s.shape.slice(1)) * (bytesPerElement(s.dtype) || 16), 0);
  return Math.max(2048, Math.min(65536, Math.floor((512 << 10) / Math.max(rowBytes, 1) / 2048) * 2048));
}

/** The query, streamed once and in order on a connection of its own: --keep columns first, then each input. */
async function openQuery(instance: DuckDBInstance, connection: DuckDBConnection, sql: string, plan: ColumnPlan, keep: string[], workers: number, cleanup: CleanupStack) {
  const source = `(${sql}) AS pyml_query`;
  const selected = [...keep.map((k) => `pyml_query.${quoteIdent(k)}`), ...plan.inputs.map((i, n) => `${i.sql} AS ${quoteIdent(`pyml_input_${n}`)}`)];
  // While the model processes run, DuckDB gets the cores they leave (at least one) rather than a thread per core:
  // more threads than cores only add switching and idle spinning to the reading and inserting.
  const duckdbThreads = Number((await connection.runAndReadAll(`SELECT current_setting('threads')`)).getRows()[0][0]);
  await connection.run(`SET threads = ${Math.max(1, Math.min(duckdbThreads, availableParallelism() - workers))}`);
  const reader = await instance.connect();
  let open = true;
  const close = () => {
    if (open) reader.closeSync();
    open = false;
  };
  cleanup.defer(close);
  // DuckDB's threads run the query ahead by this much (the default, about 1 MB, is some 20 chunks), so a chunk is
  // usually there when asked for; bounded, it does not grow with the row count.
  await reader.run(`SET streaming_buffer_size = '16MB'`);
  const stream = await reader.stream(`SELECT ${selected.join(', ')} FROM ${source}`);
  return { source, stream, keepTypes: stream.columnTypes().slice(0, keep.length), duckdbThreads, close };
}

/**
 * Where the rows go as they come back; it only becomes the target when everything succeeded. For --into, a new table
 * of the target database inside a transaction that also swaps it in (a failure, or a crash, leaves no trace); for
 * --out, the Parquet files of a new dataset, written straight from the rows (no staging table, no second pass) into
 * a temp directory beside the target, which takes the target's name at the end (openDatasetTemp).
 */
async function openOutput(connection: DuckDBConnection, target: OutputTarget, source: string, keep: string[], outputs: TensorSpec[], cleanup: CleanupStack) {
  if (target.kind === 'parquet') {
    const temp = await openDatasetTemp(target);
    let committed = false;
    cleanup.defer(() => (committed ? undefined : temp.discard()));
    const names = [...keep, ...outputs.map((o) => o.name)];
    const columns = names.map((n, i) => `c${i} AS ${quoteIdent(n)}`).join(', ');
    return {
      into: (select: string, index: number) => copyPartStatement(`SELECT ${columns} FROM (${select})`, temp.dir, target.partitionBy, index),
      async begin(): Promise<void> {},
      async commit(): Promise<void> {
        await temp.commit();
        committed = true;
      },
    };
  }
  const parts = target.table.split('.');
  const schema = parts.length === 2 ? parts[0] : 'main';
  const name = `${quoteIdent(schema)}.${quoteIdent(`pyml_tmp_${randomBytes(6).toString('hex')}`)}`;
  let open = false;
  cleanup.defer(() => (open ? connection.run('ROLLBACK').catch(() => {}) : undefined));
  return {
    into: name,
    /** Begins the transaction the table is made and swapped in; the --keep columns' exact types come from the query. */
    async begin(): Promise<void> {
      await connection.run('BEGIN TRANSACTION');
      open = true;
      const columns = [...keep.map((k) => `pyml_query.${quoteIdent(k)}`), ...outputs.map((o) => `NULL::${sqlTypeFor(o.dtype, o.shape.slice(1))} AS ${quoteIdent(o.name)}`)];
      await connection.run(`CREATE TABLE ${name} AS SELECT ${columns.join(', ')} FROM ${source} LIMIT 0`);
    },
    /** The new table replaces the target in the same transaction. */
    async commit(): Promise<void> {
      await connection.run(`DROP TABLE IF EXISTS ${qualifiedTable(target.table)}`);
      await connection.run(`ALTER TABLE ${name} RENAME TO ${quoteIdent(target.table.split('.').at(-1)!)}`);
      await connection.run('COMMIT');
      open = false;
    },
  };
}

/** The row count, for the ETA only, costs a second run of the query: counted beside the run, when progress shows. */
function countRowsBeside(instance: DuckDBInstance, source: string): () => number | undefined {
  let total: number | undefined;
  void instance.connect().then(async (c) => {
    try {
      total = Number((await c.runAndReadAll(`SELECT count(*) FROM ${source}`)).getRows()[0][0]);
    } finally {
      c.closeSync();
    }
  }).catch(() => {});
  return () => total;
}

/** After an abort, whatever failed (but a column check) is reported as the interruption it was. */
function asInterruption(error: unknown, options: BatchOptions): unknown {
  if (!options.signal?.aborted || error instanceof ColumnCheckError) return error;
  const failure = error instanceof BatchFailedError ? error : undefined;
  return new BatchInterruptedError(`interrupted${failure?.range ? ` during ${describeRange(failure.range)}` : ''}; ${describeTarget(options.target)} was left as it was`);
}
