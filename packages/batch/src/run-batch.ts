import { randomBytes } from 'node:crypto';
import { rm } from 'node:fs/promises';
import { availableParallelism } from 'node:os';
import { join, resolve } from 'node:path';
import { type DuckDBConnection, DuckDBInstance } from '@duckdb/node-api';
import type { RecordBatch } from 'apache-arrow';
import { bytesPerElement, elementCount } from '@pyml/contract';
import { columnsToTensors, tensorsToRecordBatch } from '@pyml/runtime/arrow-tensors';
import { ChunkBatcher, type InputBatch, NullInputError } from './chunk-batcher.ts';
import { type ColumnPlan, ColumnCheckError, planColumns } from './column-plan.ts';
import { quoteIdent, quoteString, sqlTypeFor } from './duckdb-types.ts';
import { type OutputTarget, commitOutput, describeTarget, qualifiedTable } from './output-target.ts';
import { RowWriter } from './row-writer.ts';
import { TableInserter } from './table-inserter.ts';
import { type ModelProcesses, startModelProcesses } from './model-processes.ts';
import { type BatchRange, BatchFailedError, WorkerPool, describeRange } from './worker-pool.ts';
import { createScratchDir, sweepStaleScratchDirs } from './scratch-dir.ts';

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

/** Ctrl-C (or the caller's abort) stopped the run; nothing was written. */
export class BatchInterruptedError extends Error {
  override name = 'BatchInterruptedError';
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
  // The model processes start first (node, weights, init take a while), loading while DuckDB starts the query.
  if (!options.models) {
    if (options.signal?.aborted) throw new BatchInterruptedError('interrupted');
    step(`unpacking ${options.image}`);
  }
  const models = options.models ?? await startModelProcesses(options.image, options.workers ?? availableParallelism());
  const workers = models.processes.length;
  if (options.workers !== undefined && options.workers !== workers) {
    await models.kill();
    throw new Error(`internal: ${workers} model processes started for --workers ${options.workers}`);
  }
  const signature = models.image.manifest.signature;
  let pool: WorkerPool | undefined;
  let reader: DuckDBConnection | undefined;
  let inTransaction = false;
  let instance: DuckDBInstance | undefined;
  let connection: DuckDBConnection | undefined;
  let scratchDir: string | undefined;
  let inserter: TableInserter | undefined;
  try {
    const dbPath = options.target.kind === 'table' ? options.target.db : options.db;
    const instanceNow = instance = await DuckDBInstance.create(dbPath ? resolve(dbPath) : ':memory:').catch((error: Error) => {
      throw dbPath ? new Error(`--db ${resolve(dbPath)}: ${error.message.replace(/^IO Error: /, '')}`) : error;
    });
    connection = await instance.connect();
    await sweepStaleScratchDirs();
    scratchDir = await createScratchDir();
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

    // 2. The rows go to the model processes (started above, and loading meanwhile).
    if (options.signal?.aborted) throw new BatchInterruptedError('interrupted');
    pool = new WorkerPool(models.processes);
    step('starting the query');
    const stageStarted = performance.now();
    const outputs = signature.outputs;
    const inputSpecs = plan.inputs.map((i) => i.spec);
    const rowBytes = inputSpecs.reduce((n, s) => n + elementCount(s.shape.slice(1)) * (bytesPerElement(s.dtype) || 16), 0);
    // About 512 KiB of input a batch: a model's intermediates grow with the batch (the tabular MLP's hidden layer is
    // 32x its input), and once they outgrow the caches every row costs more (onnxruntime spends 2.7x the CPU on that
    // MLP at 32768 rows as at 4096); the per-batch cost of the pipes and Arrow is small down to a few thousand rows.
    const batchRows = options.batchRows ?? Math.max(2048, Math.min(65536, Math.floor((512 << 10) / Math.max(rowBytes, 1) / 2048) * 2048));

    // The query streams once, in order: --keep columns first, then each input at exactly its tensor type.
    const source = `(${options.query}) AS pyml_query`;
    const selected = [...keep.map((k) => `pyml_query.${quoteIdent(k)}`), ...plan.inputs.map((i, n) => `${i.sql} AS ${quoteIdent(`pyml_input_${n}`)}`)];
    // While the model processes run, DuckDB gets the cores they leave (at least one) rather than a thread per core:
    // more threads than cores only add switching and idle spinning to the reading and inserting.
    const duckdbThreads = Number((await connection.runAndReadAll(`SELECT current_setting('threads')`)).getRows()[0][0]);
    await connection.run(`SET threads = ${Math.max(1, Math.min(duckdbThreads, availableParallelism() - workers))}`);
    reader = await instance.connect();
    // DuckDB's threads run the query ahead by this much (the default, about 1 MB, is some 20 chunks), so a chunk is
    // usually there when asked for; bounded, it does not grow with the row count.
    await reader.run(`SET streaming_buffer_size = '16MB'`);
    const stream = await reader.stream(`SELECT ${selected.join(', ')} FROM ${source}`);
    const keepTypes = stream.columnTypes().slice(0, keep.length);
    const writer = new RowWriter(keepTypes, outputs);

    // Rows are inserted, as they come back, to a new table that only becomes the target when everything succeeded:
    // for --into, a table of the target database inside a transaction that also swaps it in (a failure, or a crash,
    // leaves no trace); for --out, a table of a scratch database that is then written out as Parquet.
    let outTable: string;
    let outSchema: string;
    let outCatalog: string | undefined;
    if (options.target.kind === 'table') {
      const parts = options.target.table.split('.');
      outSchema = parts.length === 2 ? parts[0] : 'main';
      outTable = `pyml_tmp_${randomBytes(6).toString('hex')}`;
    } else {
      await connection.run(`ATTACH ${quoteString(join(scratchDir, 'scratch.duckdb'))} AS ${SCRATCH}`);
      outCatalog = SCRATCH;
      outSchema = 'main';
      outTable = 'out';
    }
    const outName = `${outCatalog ? `${quoteIdent(outCatalog)}.` : ''}${quoteIdent(outSchema)}.${quoteIdent(outTable)}`;
    // Registered before the transaction begins: the function is this connection's, not the database's.
    // INSERTs of at least 128Ki rows (a statement and its table-function scan cost the same whatever the batch size).
    const insertRows = Math.max(batchRows, 131072);
    inserter = new TableInserter(connection, writer, outName, insertRows);
    if (options.target.kind === 'table') {
      await connection.run('BEGIN TRANSACTION');
      inTransaction = true;
    }
    // The --keep columns' exact types come from the query itself (no type names spelled out here).
    const outColumns = [...keep.map((k) => `pyml_query.${quoteIdent(k)}`), ...outputs.map((o) => `NULL::${sqlTypeFor(o.dtype, o.shape.slice(1))} AS ${quoteIdent(o.name)}`)];
    await connection.run(`CREATE TABLE ${outName} AS SELECT ${outColumns.join(', ')} FROM ${source} LIMIT 0`);
    const stageSeconds = (performance.now() - stageStarted) / 1000;

    // The row count, for the ETA only, costs a second run of the query: counted beside the run, when progress shows.
    let total: number | undefined;
    if (options.onProgress) {
      void instanceNow.connect().then(async (c) => {
        try {
          total = Number((await c.runAndReadAll(`SELECT count(*) FROM ${source}`)).getRows()[0][0]);
        } finally {
          c.closeSync();
        }
      }).catch(() => {});
    }

    const predictStarted = performance.now();
    step(`running the rows through ${workers} model process${workers === 1 ? '' : 'es'}`);
    const activePool = pool;
    const activeInserter = inserter;
    const batcher = new ChunkBatcher(inputSpecs, batchRows, keep.length);
    // About 64Ki rows queued per process (at least 2 batches), so a process has work while this thread is busy
    // elsewhere (a GC, a chunk of output rows) however small the batches are.
    const maxInFlight = workers * Math.max(2, Math.ceil(65536 / batchRows));
    const queue: { batch: InputBatch; range: BatchRange; result: Promise<RecordBatch> }[] = [];
    let read = 0;
    let batches = 0;
    let lastProgress = 0;

    const interrupted = () => options.signal?.aborted;
    const drainOne = async () => {
      const { batch, range, result } = queue.shift()!;
      let out: RecordBatch;
      try {
        out = await result;
      } catch (error) {
        throw activePool.failure ?? error;
      }
      // The model process has read the whole batch (it answered): its input buffers can take later rows.
      batcher.recycle(batch);
      let tensors;
      try {
        tensors = columnsToTensors(outputs, out, 'output');
      } catch (error) {
        throw new BatchFailedError(range, (error as Error).message, -1);
      }
      writer.addPredictions(tensors, range.rows);
      activeInserter.kick();
      // Rows wait for DuckDB only so long: memory stays bounded whatever the row count.
      if (writer.ready > 4 * insertRows) await activeInserter.settle();
      batches++;
      const now = performance.now();
      if (options.onProgress && now - lastProgress > 100) {
        lastProgress = now;
        options.onProgress({ rows: writer.written, total, seconds: seconds() });
      }
    };
    const dispatch = async (batch: InputBatch) => {
      if (interrupted()) throw new BatchInterruptedError('interrupted');
      const range: BatchRange = { index: batch.index, firstRow: batch.firstRow, rows: batch.rows };
      const result = activePool.submit(tensorsToRecordBatch(inputSpecs, batch.tensors), range);
      result.catch(() => {});
      queue.push({ batch, range, result });
      while (queue.length >= maxInFlight) await drainOne();
    };
    // The batch holding `row`, for errors found while reading (its size needs the row count, counted then).
    const batchOf = async (row: number): Promise<BatchRange> => {
      const index = Math.floor(row / batchRows);
      const c = await instanceNow.connect();
      try {
        const rows = Number((await c.runAndReadAll(`SELECT count(*) FROM ${source}`)).getRows()[0][0]);
        return { index, firstRow: index * batchRows, rows: Math.max(0, Math.min(batchRows, rows - index * batchRows)) };
      } finally {
        c.closeSync();
      }
    };

    // The next chunk is always being fetched (on DuckDB's side, off this thread) while this one is batched and sent,
    // and earlier rows are written: fetching and appending no longer take turns.
    const fetchNext = () => {
      const next = stream.fetchChunk();
      next.catch(() => {});
      return next;
    };
    let next = fetchNext();
    for (;;) {
      let chunk;
      try {
        chunk = await next;
        if (chunk && chunk.rowCount > 0) next = fetchNext();
      } catch (error) {
        // A cast that fails at run time (a LIST of the wrong length) is a bad row in the batch being read.
        const index = Math.floor(read / batchRows);
        throw new BatchFailedError({ index, firstRow: index * batchRows, rows: 0 }, `DuckDB could not read the inputs: ${(error as Error).message}`, -1);
      }
      if (!chunk || chunk.rowCount === 0) break;
      let ready: InputBatch[];
      try {
        ready = batcher.add(chunk);
      } catch (error) {
        if (error instanceof NullInputError) throw new BatchFailedError(await batchOf(error.row), error.message, -1);
        throw error;
      }
      writer.addChunk(chunk);
      read += chunk.rowCount;
      for (const batch of ready) await dispatch(batch);
    }
    const last = batcher.flush();
    if (last) await dispatch(last);
    while (queue.length) await drainOne();
    // The last rows go into the table while the model processes exit (both must succeed before anything commits).
    await Promise.all([pool.close(), inserter.flush()]);
    pool = undefined;
    reader.closeSync();
    reader = undefined;
    const done = writer.written;
    options.onProgress?.({ rows: done, total: done, seconds: seconds() });
    if (done !== read) throw new Error(`internal: ${done} rows written for ${read} rows read`);

    await connection.run(`SET threads = ${duckdbThreads}`);
    const predictSeconds = (performance.now() - predictStarted) / 1000;
    const writeStarted = performance.now();
    // 3. Everything succeeded: the target takes the new rows.
    if (interrupted()) throw new BatchInterruptedError('interrupted');
    step(`writing ${describeTarget(options.target)}`);
    if (options.target.kind === 'table') {
      await connection.run(`DROP TABLE IF EXISTS ${qualifiedTable(options.target.table)}`);
      await connection.run(`ALTER TABLE ${outName} RENAME TO ${quoteIdent(options.target.table.split('.').at(-1)!)}`);
      await connection.run('COMMIT');
      inTransaction = false;
    } else {
      await commitOutput(connection, options.target, `SELECT * FROM ${outName}`);
    }
    return {
      rows: done, batches, seconds: seconds(), workers, threads: models.threads, batchRows,
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
    await (pool ? pool.kill() : models.kill());
    await inserter?.settle().catch(() => {});
    reader?.closeSync();
    if (inTransaction) await connection?.run('ROLLBACK').catch(() => {});
    connection?.closeSync();
    instance?.closeSync();
    if (scratchDir) await rm(scratchDir, { recursive: true, force: true });
  }
}
