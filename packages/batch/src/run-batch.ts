import { randomBytes } from 'node:crypto';
import { rm } from 'node:fs/promises';
import { availableParallelism } from 'node:os';
import { join, resolve } from 'node:path';
import { type DuckDBConnection, DuckDBInstance } from '@duckdb/node-api';
import { bytesPerElement, elementCount, type Signature, type TensorSpec } from '@pyml/contract';
import { BatchInterruptedError } from './batch-interrupted.ts';
import { CleanupStack } from './cleanup-stack.ts';
import { type ColumnPlan, ColumnCheckError, planColumns } from './column-plan.ts';
import { quoteIdent, quoteString, sqlTypeFor } from './duckdb-types.ts';
import { type OutputTarget, commitOutput, describeTarget, qualifiedTable } from './output-target.ts';
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
}

const SCRATCH = 'pyml_scratch';

/**
 * `pyml batch`: runs a SQL query through an image's model into a table or a Parquet dataset.
 *
 * 1. The query's columns are checked against the image's signature before anything runs (planColumns).
 * 2. The query streams once, in order (no staged copy); its inputs go as Arrow record batches through N
 *    `entrypoint batch` processes of the image (started first, so they load while DuckDB starts), and each chunk's
 *    --keep columns, beside the predictions for its rows (RowWriter), are inserted into a new table by DuckDB itself
 *    (TableInserter) as the predictions come back in input order.
 * 3. Only when every batch succeeded does that table become the target: renamed over it in the same transaction
 *    (--into), or written out as Parquet and renamed into place (commitOutput). Any failure leaves the target as it was.
 */
export async function runBatch(options: BatchOptions): Promise<BatchResult> {
  const started = performance.now();
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
    const { instance, connection, scratchDir } = await openDatabase(options, cleanup);

    // 1. Columns against the signature, before any row runs.
    const plan = await checkColumns(connection, options, signature, keep);
    if (plan.packed) step(`packing columns ${plan.packed.columns.join(', ')} into input '${plan.packed.input}'`);

    // 2. The rows go to the model processes (started above, and loading meanwhile).
    if (interrupted()) throw new BatchInterruptedError('interrupted');
    const pool = new WorkerPool(models.processes);
    cleanup.defer(() => pool.kill());
    step('starting the query');
    const stageStarted = performance.now();
    const inputSpecs = plan.inputs.map((i) => i.spec);
    const batchRows = options.batchRows ?? batchRowsFor(inputSpecs);
    const query = await openQuery(instance, connection, options.query, plan, keep, workers, cleanup);
    const writer = new RowWriter(query.keepTypes, signature.outputs);
    // INSERTs of at least 128Ki rows (a statement and its table-function scan cost the same whatever the batch size).
    const insertRows = Math.max(batchRows, 131072);
    const output = await createOutputTable(connection, options.target, scratchDir, query.source, keep, signature.outputs, cleanup);
    const inserter = new TableInserter(connection, writer, output.name, insertRows);
    // Registered before the transaction begins (the table function is this connection's, not the database's), and
    // waited for before a rollback.
    const transaction = await output.begin();
    cleanup.defer(() => inserter.settle().catch(() => {}));
    await output.create();
    const stageSeconds = (performance.now() - stageStarted) / 1000;

    const total = options.onProgress ? countRowsBeside(instance, query.source) : () => undefined;
    const predictStarted = performance.now();
    step(`running the rows through ${workers} model process${workers === 1 ? '' : 'es'}`);
    const { read, batches } = await pipeRows({
      stream: query.stream, instance, source: query.source, inputSpecs, outputs: signature.outputs, keepCount: keep.length,
      batchRows, insertRows, workers, pool, writer, inserter, signal: options.signal,
      onProgress: options.onProgress && ((rows) => options.onProgress!({ rows, total: total(), seconds: seconds() })),
    });
    // The last rows go into the table while the model processes exit (both must succeed before anything commits).
    await Promise.all([pool.close(), inserter.flush()]);
    query.close();
    const done = writer.written;
    options.onProgress?.({ rows: done, total: done, seconds: seconds() });
    if (done !== read) throw new Error(`internal: ${done} rows written for ${read} rows read`);
    await connection.run(`SET threads = ${query.duckdbThreads}`);
    const predictSeconds = (performance.now() - predictStarted) / 1000;

    // 3. Everything succeeded: the target takes the new rows.
    const writeStarted = performance.now();
    if (interrupted()) throw new BatchInterruptedError('interrupted');
    step(`writing ${describeTarget(options.target)}`);
    await commitTarget(connection, options.target, output.name, transaction);
    return {
      rows: done, batches, seconds: seconds(), workers, threads: models.threads, batchRows,
      timings: { stage: stageSeconds, predict: predictSeconds, write: (performance.now() - writeStarted) / 1000 },
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

/** An open transaction of the target's database: rolled back when the run ends without committing it. */
interface Transaction {
  commit(): Promise<void>;
}

/**
 * The new table the rows are inserted into as they come back; it only becomes the target when everything
 * succeeded. For --into, a table of the target database inside a transaction that also swaps it in (a failure, or
 * a crash, leaves no trace); for --out, a table of a scratch database that is then written out as Parquet.
 */
async function createOutputTable(connection: DuckDBConnection, target: OutputTarget, scratchDir: string, source: string, keep: string[], outputs: TensorSpec[], cleanup: CleanupStack) {
  let catalog: string | undefined;
  let schema = 'main';
  let table = 'out';
  if (target.kind === 'table') {
    const parts = target.table.split('.');
    schema = parts.length === 2 ? parts[0] : 'main';
    table = `pyml_tmp_${randomBytes(6).toString('hex')}`;
  } else {
    await connection.run(`ATTACH ${quoteString(join(scratchDir, 'scratch.duckdb'))} AS ${SCRATCH}`);
    catalog = SCRATCH;
  }
  const name = `${catalog ? `${quoteIdent(catalog)}.` : ''}${quoteIdent(schema)}.${quoteIdent(table)}`;
  return {
    name,
    /** Begins the transaction --into commits in; for --out there is none to begin. */
    async begin(): Promise<Transaction | undefined> {
      if (target.kind !== 'table') return undefined;
      await connection.run('BEGIN TRANSACTION');
      let open = true;
      cleanup.defer(() => (open ? connection.run('ROLLBACK').catch(() => {}) : undefined));
      return { async commit() { await connection.run('COMMIT'); open = false; } };
    },
    /** The --keep columns' exact types come from the query itself (no type names spelled out here). */
    async create(): Promise<void> {
      const columns = [...keep.map((k) => `pyml_query.${quoteIdent(k)}`), ...outputs.map((o) => `NULL::${sqlTypeFor(o.dtype, o.shape.slice(1))} AS ${quoteIdent(o.name)}`)];
      await connection.run(`CREATE TABLE ${name} AS SELECT ${columns.join(', ')} FROM ${source} LIMIT 0`);
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

/** The new table becomes the target: renamed over it in the same transaction (--into), or written out as Parquet. */
async function commitTarget(connection: DuckDBConnection, target: OutputTarget, table: string, transaction: Transaction | undefined): Promise<void> {
  if (target.kind === 'table') {
    await connection.run(`DROP TABLE IF EXISTS ${qualifiedTable(target.table)}`);
    await connection.run(`ALTER TABLE ${table} RENAME TO ${quoteIdent(target.table.split('.').at(-1)!)}`);
    await transaction!.commit();
  } else {
    await commitOutput(connection, target, `SELECT * FROM ${table}`);
  }
}

/** After an abort, whatever failed (but a column check) is reported as the interruption it was. */
function asInterruption(error: unknown, options: BatchOptions): unknown {
  if (!options.signal?.aborted || error instanceof ColumnCheckError) return error;
  const failure = error instanceof BatchFailedError ? error : undefined;
  return new BatchInterruptedError(`interrupted${failure?.range ? ` during ${describeRange(failure.range)}` : ''}; ${describeTarget(options.target)} was left as it was`);
}
