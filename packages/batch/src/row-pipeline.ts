import type { DuckDBConnection, DuckDBInstance } from '@duckdb/node-api';
import type { RecordBatch } from 'apache-arrow';
import type { TensorSpec } from '@pyml/contract';
import { columnsToTensors, tensorsToRecordBatch } from '@pyml/runtime/arrow-io';
import { BatchInterruptedError } from './batch-interrupted.ts';
import { ChunkBatcher, type InputBatch, NullInputError } from './chunk-batcher.ts';
import type { RowWriter } from './row-writer.ts';
import type { TableInserter } from './table-inserter.ts';
import { type BatchRange, BatchFailedError, type WorkerPool } from './worker-pool.ts';

export interface RowPipeline {
  /** The query's rows: --keep columns first, then each input at exactly its tensor type. */
  stream: Awaited<ReturnType<DuckDBConnection['stream']>>;
  instance: DuckDBInstance;
  /** The query as a FROM item, to count its rows when an error needs the size of a batch. */
  source: string;
  inputSpecs: TensorSpec[];
  outputs: TensorSpec[];
  keepCount: number;
  batchRows: number;
  /** Rows waiting for DuckDB beyond 4x this make the pipeline wait for the inserter. */
  insertRows: number;
  workers: number;
  pool: WorkerPool;
  writer: RowWriter;
  inserter: TableInserter;
  signal?: AbortSignal;
  /** Called at most every 100 ms with the rows written so far. */
  onProgress?: (rows: number) => void;
}

/**
 * Streams the query's rows through the model processes: chunks are batched, sent (a bounded number in flight), and
 * the predictions, back in input order, handed to the writer and the inserter. Returns the rows read and batches sent.
 */
export async function pipeRows(p: RowPipeline): Promise<{ read: number; batches: number }> {
  const batcher = new ChunkBatcher(p.inputSpecs, p.batchRows, p.keepCount);
  // About 64Ki rows queued per process (at least 2 batches), so a process has work while this thread is busy
  // elsewhere (a GC, a chunk of output rows) however small the batches are.
  const maxInFlight = p.workers * Math.max(2, Math.ceil(65536 / p.batchRows));
  const queue: { batch: InputBatch; range: BatchRange; result: Promise<RecordBatch> }[] = [];
  let read = 0;
  let batches = 0;
  let lastProgress = 0;

  const drainOne = async () => {
    const { batch, range, result } = queue.shift()!;
    let out: RecordBatch;
    try {
      out = await result;
    } catch (error) {
      throw p.pool.failure ?? error;
    }
    // The model process has read the whole batch (it answered): its input buffers can take later rows.
    batcher.recycle(batch);
    let tensors;
    try {
      tensors = columnsToTensors(p.outputs, out, 'output');
    } catch (error) {
      throw new BatchFailedError(range, (error as Error).message, -1);
    }
    p.writer.addPredictions(tensors, range.rows);
    p.inserter.kick();
    // Rows wait for DuckDB only so long: memory stays bounded whatever the row count.
    if (p.writer.ready > 4 * p.insertRows) await p.inserter.settle();
    batches++;
    const now = performance.now();
    if (p.onProgress && now - lastProgress > 100) {
      lastProgress = now;
      p.onProgress(p.writer.written);
    }
  };
  const dispatch = async (batch: InputBatch) => {
    if (p.signal?.aborted) throw new BatchInterruptedError('interrupted');
    const range: BatchRange = { index: batch.index, firstRow: batch.firstRow, rows: batch.rows };
    const result = p.pool.submit(tensorsToRecordBatch(p.inputSpecs, batch.tensors), range);
    result.catch(() => {});
    queue.push({ batch, range, result });
    while (queue.length >= maxInFlight) await drainOne();
  };

  // The next chunk is always being fetched (on DuckDB's side, off this thread) while this one is batched and sent,
  // and earlier rows are written: fetching and appending no longer take turns.
  const fetchNext = () => {
    const next = p.stream.fetchChunk();
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
      const index = Math.floor(read / p.batchRows);
      throw new BatchFailedError({ index, firstRow: index * p.batchRows, rows: 0 }, `DuckDB could not read the inputs: ${(error as Error).message}`, -1);
    }
    if (!chunk || chunk.rowCount === 0) break;
    let ready: InputBatch[];
    try {
      ready = batcher.add(chunk);
    } catch (error) {
      if (error instanceof NullInputError) throw new BatchFailedError(await batchOf(p, error.row), error.message, -1);
      throw error;
    }
    p.writer.addChunk(chunk);
    read += chunk.rowCount;
    for (const batch of ready) await dispatch(batch);
  }
  const last = batcher.flush();
  if (last) await dispatch(last);
  while (queue.length) await drainOne();
  return { read, batches };
}

/** The batch holding `row`, for errors found while reading (its size needs the row count, counted then). */
async function batchOf(p: RowPipeline, row: number): Promise<BatchRange> {
  const index = Math.floor(row / p.batchRows);
  const c = await p.instance.connect();
  try {
    const rows = Number((await c.runAndReadAll(`SELECT count(*) FROM ${p.source}`)).getRows()[0][0]);
    return { index, firstRow: index * p.batchRows, rows: Math.max(0, Math.min(p.batchRows, rows - index * p.batchRows)) };
  } finally {
    c.closeSync();
  }
}
