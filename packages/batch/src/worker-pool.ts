import type { EntrypointCommand } from '@pyml/launcher';
import { type ChildProcess, spawn } from 'node:child_process';
import { type RecordBatch, RecordBatchReader, RecordBatchStreamWriter } from 'apache-arrow';

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

/** How to start one model process: the image's entrypoint as the launcher builds it. */
export type WorkerCommand = EntrypointCommand;

interface Pending {
  range: BatchRange;
  resolve: (batch: RecordBatch) => void;
  reject: (error: Error) => void;
}

const STDERR_KEEP = 64 * 1024;

/**
 * One long-running `entrypoint batch` process: record batches go in as one Arrow IPC stream on its stdin, and come
 * back in order, one per input batch, on its stdout.
 */
class EntrypointWorker {
  private readonly child: ChildProcess;
  private readonly writer = new RecordBatchStreamWriter();
  private readonly pending: Pending[] = [];
  private local = 0;
  private stderr = '';
  private failure: Error | undefined;
  readonly exited: Promise<number | null>;

  constructor(readonly id: number, cmd: WorkerCommand, private readonly onFailure: (error: BatchFailedError) => void) {
    this.child = spawn(cmd.file, cmd.args, { env: cmd.env, cwd: cmd.cwd, stdio: ['pipe', 'pipe', 'pipe'] });
    this.child.stderr!.on('data', (c: Buffer) => {
      this.stderr = (this.stderr + c.toString()).slice(-STDERR_KEEP);
    });
    // EPIPE when the process died: its exit tells why.
    this.child.stdin!.on('error', () => {});
    this.writer.toNodeStream().pipe(this.child.stdin!);
    this.exited = new Promise((resolve) => this.child.on('close', (code, signal) => {
      this.finish(code, signal);
      resolve(code);
    }));
    void this.readOutputs();
  }

  get load(): number { return this.pending.length; }

  submit(batch: RecordBatch, range: BatchRange): Promise<RecordBatch> {
    if (this.failure) return Promise.reject(this.failure);
    return new Promise((resolve, reject) => {
      this.pending.push({ range, resolve, reject });
      this.local++;
      this.writer.write(batch);
    });
  }

  private async readOutputs(): Promise<void> {
    try {
      const reader = await RecordBatchReader.from(this.child.stdout!);
      for await (const out of reader) {
        // Arrow JS yields one empty placeholder batch for a stream that holds only a schema (no input batches).
        if (out.numRows === 0 && this.pending.length === 0) continue;
        const head = this.pending.shift();
        if (!head) throw new Error('the model process sent a batch nobody asked for');
        if (out.numRows !== head.range.rows) {
          this.fail(head.range, `the model process returned ${out.numRows} rows for ${head.range.rows}`);
          head.reject(this.failure!);
          return;
        }
        head.resolve(out);
      }
    } catch (error) {
      // A broken stream is reported with the exit status, which knows more.
      if (this.child.exitCode === null && this.child.signalCode === null) this.kill();
      void error;
    }
  }

  /** Ends the input stream; the process finishes the queued batches and exits 0. */
  end(): void {
    this.writer.finish();
  }

  kill(): void {
    if (this.child.exitCode === null && this.child.signalCode === null) this.child.kill('SIGKILL');
  }

  private finish(code: number | null, signal: NodeJS.Signals | null): void {
    if (code === 0 && this.pending.length === 0) return;
    const done = this.local - this.pending.length;
    let range = this.pending[0]?.range;
    let reason: string | undefined;
    for (const line of this.stderr.trim().split('\n').reverse()) {
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
      const tail = this.stderr.trim().split('\n').slice(-5).join('\n');
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

  constructor(count: number, command: WorkerCommand) {
    this.workers = Array.from({ length: count }, (_, i) => new EntrypointWorker(i, command, (error) => {
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
