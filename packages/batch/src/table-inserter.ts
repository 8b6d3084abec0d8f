import { randomBytes } from 'node:crypto';
import { type DuckDBConnection, DuckDBTableFunction } from '@duckdb/node-api';
import type { RowWriter } from './row-writer.ts';

/**
 * Moves the output rows into the output table with `INSERT INTO table SELECT * FROM <table function>` (or, for a
 * Parquet dataset, into the next file of it with `COPY (SELECT ... FROM <table function>) TO ...`): DuckDB pulls
 * the ready chunks from the RowWriter (a cheap copy on this thread) and does the insertion itself (row groups,
 * compression, the optimistic writes to the database file) on its own threads, where an appender would do all that
 * on this one, the thread that also feeds the model processes.
 *
 * One statement runs at a time; it ends when no complete chunk is left, and the next `kick` starts another. The rows
 * keep their order: one statement after another, each from a single-threaded scan.
 */
export class TableInserter {
  private readonly functionName = `pyml_rows_${randomBytes(6).toString('hex')}`;
  private running: Promise<void> | undefined;
  private failure: Error | undefined;
  /** Statements run so far (a dataset's files are numbered by it). */
  statements = 0;

  /**
   * Registers the table function on `connection` (before any transaction on it begins). `into`: the table to insert
   * into, or the statement that moves `select` (`SELECT * FROM <table function>`, columns c0, c1, ...) somewhere,
   * given the statement's index.
   */
  constructor(private readonly connection: DuckDBConnection, private readonly writer: RowWriter, private readonly into: string | ((select: string, index: number) => string), private readonly minRows: number) {
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

  /** Starts a statement if none is running and at least `minRows` rows (or `force`: any) are ready. */
  kick(force = false): void {
    if (this.failure) throw this.failure;
    if (this.running || this.writer.ready === 0 || (!force && this.writer.ready < this.minRows)) return;
    this.start();
  }

  private start(): void {
    const select = `SELECT * FROM ${this.functionName}()`;
    const sql = typeof this.into === 'string' ? `INSERT INTO ${this.into} ${select}` : this.into(select, this.statements);
    this.statements++;
    this.running = this.connection.run(sql).then(
      () => { this.running = undefined; },
      (error: Error) => { this.running = undefined; this.failure = new Error(`writing the output rows failed: ${error.message}`); },
    );
  }

  /** Waits for the running statement, if any (backpressure: rows wait in memory only so long). */
  async settle(): Promise<void> {
    await this.running;
    if (this.failure) throw this.failure;
  }

  /**
   * Moves every ready row. `atLeastOnce`: runs a statement even when there was never a row (a dataset of no rows
   * still gets a file with the columns).
   */
  async flush(atLeastOnce = false): Promise<void> {
    for (;;) {
      await this.settle();
      if (this.writer.ready === 0 && !(atLeastOnce && this.statements === 0)) return;
      this.start();
    }
  }
}
