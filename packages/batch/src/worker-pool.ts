import { type RecordBatch, RecordBatchReader, RecordBatchStreamWriter } from 'apache-arrow';
import { WritableSink } from '@pyml/runtime/arrow-io';
import type { ModelProcess } from './model-processes.ts';
import { processCpuSeconds } from './cpu-seconds.ts';

/** How long a process that answered a batch with no rows gets to exit with its reason. */
const EXIT_GRACE_MS = 2000;

/** Whether `exited` settles within `ms`. */
function exitsWithin(exited: Promise<unknown>, ms: number): Promise<boolean> {
  let timer: NodeJS.Timeout | undefined;
  return Promise.race([
    exited.then(() => true),
    new Promise<boolean>((resolve) => { timer = setTimeout(() => resolve(false), ms); }),
  ]).finally(() => clearTimeout(timer));
}

/** A batch's place in the query result, for error messages. */
export interface BatchRange {
  index: number;
  firstRow: number;
  rows: number;
}

export function describeRange(r: BatchRange): string {
  return r.rows > 0 ? `batch ${r.index} (rows ${r.firstRow}–${r.firstRow + r.rows - 1})` : `batch ${r.index}`;
}

/** A batch the model (or its process) failed on. */
export class BatchFailedError extends Error {
  override name = 'BatchFailedError';
  constructor(readonly range: BatchRange | undefined, readonly reason: string, readonly worker: number) {
    super(`${range ? describeRange(range) : 'the model process'} failed: ${reason}`);
  }
}

interface Pending {
  range: BatchRange;
  resolve: (batch: RecordBatch) => void;
  reject: (error: Error) => void;
}

/**
 * One long-running `entrypoint batch` process: record batches go in as one Arrow IPC stream on its stdin, and come
 * back in order, one per input batch, on its stdout.
 */
class EntrypointWorker {
  private readonly writer = new RecordBatchStreamWriter();
  private readonly pending: Pending[] = [];
  private local = 0;
  private failure: Error | undefined;
  /** The process's CPU seconds at its first answer and at its latest, and the answers between (for `cpu`). */
  private cpuAtFirst: number | undefined;
  private cpuAtLast: number | undefined;
  private answers = 0;
  private cpuAtEnd: number | undefined;
  readonly exited: Promise<number | null>;

  constructor(readonly id: number, private readonly process: ModelProcess, private readonly onFailure: (error: BatchFailedError) => void) {
    this.writer.reset(new WritableSink(process.child.stdin!, true));
    this.exited = process.closed.then(({ code, signal }) => {
      this.finish(code, signal);
      return code;
    });
    void this.readOutputs();
  }

  get load(): number { return this.pending.length; }

  submit(batch: RecordBatch, range: BatchRange): Promise<RecordBatch> {
    if (this.failure) return Promise.reject(this.failure);
    return new Promise((resolve, reject) => {
      this.pending.push({ range, resolve, reject });
      this.local++;
      const stdin = this.process.child.stdin!;
      stdin.cork();
      this.writer.write(batch);
      stdin.uncork();
    });
  }

  private async readOutputs(): Promise<void> {
    try {
      const reader = await RecordBatchReader.from(this.process.child.stdout!);
      for await (const out of reader) {
        // Arrow JS yields one empty placeholder batch for a stream that holds only a schema (no input batches).
        if (out.numRows === 0 && this.pending.length === 0) continue;
        const head = this.pending[0];
        if (!head) throw new Error('the model process sent a batch nobody asked for');
        if (out.numRows !== head.range.rows) {
          // A process whose batch failed ends its stream with the schema alone (Arrow JS yields it as an empty batch)
          // and exits with the model's reason on stderr: given a moment to exit, finish() reports that reason.
          if (out.numRows === 0 && await exitsWithin(this.exited, EXIT_GRACE_MS)) return;
          this.pending.shift();
          this.fail(head.range, `the model process returned ${out.numRows} rows for ${head.range.rows}`);
          head.reject(this.failure!);
          return;
        }
        this.pending.shift();
        this.noteCpu();
        head.resolve(out);
      }
    } catch (error) {
      // A broken stream is reported with the exit status, which knows more.
      if (this.process.running) this.kill();
      void error;
    }
  }

  /** One /proc read a batch (about 20 µs): CPU up to the first answer is start-up and that batch, the rest batches. */
  private noteCpu(): void {
    const cpu = processCpuSeconds(this.process.child.pid);
    if (cpu === undefined) return;
    this.cpuAtFirst ??= cpu;
    this.cpuAtLast = cpu;
    this.answers++;
  }

  /**
   * CPU seconds until the first answer, after it, the batches after it, and in all (read before its input ends);
   * undefined where /proc is not there.
   */
  get cpu(): { untilFirst: number | undefined; afterFirst: number; batchesAfterFirst: number; total: number } | undefined {
    if (this.cpuAtEnd === undefined) return undefined;
    const afterFirst = this.cpuAtFirst === undefined ? 0 : (this.cpuAtLast ?? this.cpuAtFirst) - this.cpuAtFirst;
    return { untilFirst: this.cpuAtFirst, afterFirst, batchesAfterFirst: Math.max(0, this.answers - 1), total: this.cpuAtEnd };
  }

  /** Ends the input stream; the process finishes the queued batches and exits 0. */
  end(): void {
    this.cpuAtEnd = processCpuSeconds(this.process.child.pid);
    this.writer.finish();
  }

  kill(): void {
    this.process.kill();
  }

  private finish(code: number | null, signal: NodeJS.Signals | null): void {
    if (code === 0 && this.pending.length === 0) return;
    const done = this.local - this.pending.length;
    let range = this.pending[0]?.range;
    let reason: string | undefined;
    for (const line of this.process.stderr.trim().split('\n').reverse()) {
      let report: { error?: unknown; batch?: unknown; msg?: unknown };
      try {
        report = JSON.parse(line) as typeof report;
      } catch {
        continue;
      }
      if (report.error === undefined) continue;
      // A bad batch: {"error", "batch"} with the batch's index in this process's own stream.
      if (typeof report.batch === 'number') {
        range = this.pending[report.batch - done]?.range ?? range;
        reason = String(report.error);
      } else reason = `${typeof report.msg === 'string' ? `${report.msg}: ` : ''}${String(report.error)}`;
      break;
    }
    if (!reason) {
      const tail = this.process.stderr.trim().split('\n').slice(-5).join('\n');
      reason = `${signal ? `the model process was killed by ${signal}` : `the model process exited with code ${code}`}${tail ? `\n${tail}` : ''}`;
    }
    this.fail(range, reason);
    for (const p of this.pending.splice(0)) p.reject(this.failure!);
  }

  private fail(range: BatchRange | undefined, reason: string): void {
    if (this.failure) return;
    const error = new BatchFailedError(range, reason, this.id);
    this.failure = error;
    this.onFailure(error);
  }
}

/**
 * N entrypoint processes of the same image. Each batch goes to the least busy one; callers keep the promises in
 * input order, so output order is input order whatever the worker count. The first failure stops every process.
 */
export class WorkerPool {
  private readonly workers: EntrypointWorker[];
  private firstFailure: BatchFailedError | undefined;

  constructor(processes: readonly ModelProcess[]) {
    this.workers = processes.map((p, i) => new EntrypointWorker(i, p, (error) => {
      if (!this.firstFailure) {
        this.firstFailure = error;
        for (const w of this.workers) if (w.id !== error.worker) w.kill();
      }
    }));
  }

  get failure(): BatchFailedError | undefined { return this.firstFailure; }

  submit(batch: RecordBatch, range: BatchRange): Promise<RecordBatch> {
    if (this.firstFailure) return Promise.reject(this.firstFailure);
    let best = this.workers[0];
    for (const w of this.workers) if (w.load < best.load) best = w;
    return best.submit(batch, range);
  }

  /**
   * CPU seconds of the model processes (read from /proc as their answers came): `startup` up to each one's first
   * answer less one batch's worth, `batches` the rest, and per batch. Undefined where /proc is not there.
   */
  cpu(): { startup: number; batches: number; perBatch: number } | undefined {
    const each = this.workers.map((w) => w.cpu);
    if (each.some((c) => c === undefined)) return undefined;
    const measured = each as NonNullable<EntrypointWorker['cpu']>[];
    const batches = measured.reduce((n, c) => n + c.batchesAfterFirst, 0);
    const perBatch = batches > 0 ? measured.reduce((n, c) => n + c.afterFirst, 0) / batches : 0;
    const total = measured.reduce((n, c) => n + c.total, 0);
    // A process that never answered spent all its CPU starting.
    const startup = measured.reduce((n, c) => n + (c.untilFirst === undefined ? c.total : Math.max(0, c.untilFirst - perBatch)), 0);
    return { startup, batches: total - startup, perBatch };
  }

  /** Ends every input stream and waits for the processes to exit. */
  async close(): Promise<void> {
    for (const w of this.workers) w.end();
    await Promise.all(this.workers.map((w) => w.exited));
    if (this.firstFailure) throw this.firstFailure;
  }

  /** Stops every process now (failure elsewhere, Ctrl-C). */
  async kill(): Promise<void> {
    for (const w of this.workers) w.kill();
    await Promise.all(this.workers.map((w) => w.exited));
  }
}
