import { randomBytes } from 'node:crypto';
import { type DuckDBConnection, DuckDBTableFunction } from '@duckdb/node-api';
import type { RowWriter } from './row-writer.ts';

/**
 * Moves the output rows into the output table with `INSERT INTO table SELECT * FROM <table function>`: DuckDB pulls
 * the ready chunks from the RowWriter (a cheap copy on this thread) and does the insertion itself (row groups,
 * compression, the optimistic writes to the database file) on its own threads, where an appender would do all that
 * on this one, the thread that also feeds the model processes.
 *
 * One INSERT runs at a time; it ends when no complete chunk is left, and the next `kick` starts another. The rows
 * keep their order: one INSERT after another, each from a single-threaded scan.
 */
export class TableInserter {
  private readonly functionName = `pyml_rows_${randomBytes(6).toString('hex')}`;
  private running: Promise<void> | undefined;
  private failure: Error | undefined;

  /** Registers the table function on `connection` (before any transaction on it begins). */
  constructor(private readonly connection: DuckDBConnection, private readonly writer: RowWriter, private readonly table: string, private readonly minRows: number) {
    const types = writer.types;
    connection.registerTableFunction(DuckDBTableFunction.create({
      name: this.functionName,
      bindFunction: (bind) => types.forEach((t, i) => bind.addResultColumn(`c${i}`, t)),
      initFunction: () => {},
      mainFunction: (info, out) => {
        try {
          writer.fill(out);
        } catch (error) {
          info.setError((error as Error).message);
        }
      },
    }));
  }

  /** Starts an INSERT if none is running and at least `minRows` rows (or `force`: any) are ready. */
  kick(force = false): void {
    if (this.failure) throw this.failure;
    if (this.running || this.writer.ready === 0 || (!force && this.writer.ready < this.minRows)) return;
    this.running = this.connection.run(`INSERT INTO ${this.table} SELECT * FROM ${this.functionName}()`).then(
      () => { this.running = undefined; },
      (error: Error) => { this.running = undefined; this.failure = new Error(`writing the output rows failed: ${error.message}`); },
    );
  }

  /** Waits for the running INSERT, if any (backpressure: rows wait in memory only so long). */
  async settle(): Promise<void> {
    await this.running;
    if (this.failure) throw this.failure;
  }

  /** Inserts every ready row. */
  async flush(): Promise<void> {
    for (;;) {
      await this.settle();
      if (this.writer.ready === 0) return;
      this.kick(true);
    }
  }
}
