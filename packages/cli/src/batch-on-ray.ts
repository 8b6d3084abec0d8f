import { EXIT, PymlError } from '@pyml/errors';
import type { OutputTarget } from '@pyml/batch';
import { printJson, showProgress, usage } from './output.ts';

/** The options of `pyml batch` that the Ray engine reads. */
export interface RayBatchArgs {
  ref: string;
  /** REF as a local image path (a registry image pulled into the cache first). */
  image: () => Promise<string>;
  query: string;
  target: OutputTarget;
  db?: string;
  keep: string[];
  workers?: number;
  batchRows?: number;
  memoryLimit?: string;
  address?: string;
  json: boolean;
}

/**
 * `pyml batch REF --engine ray`: the same query, column plan and image through Ray Data (packages/batch/README.md,
 * "Running on Ray"). Writes Parquet datasets only: a DuckDB file is one machine's.
 */
export async function runBatchOnRay(args: RayBatchArgs): Promise<number> {
  if (args.target.kind !== 'parquet') throw usage('--engine ray writes a Parquet dataset: give --out DIR --format parquet (a DuckDB file cannot be written from many machines)');
  const image = await args.image();
  const showing = showProgress({ json: args.json });
  const controller = new AbortController();
  const onSigint = () => controller.abort();
  process.on('SIGINT', onSigint);
  const batch = await import('@pyml/batch');
  try {
    const result = await batch.runRayBatch({
      image, query: args.query, out: args.target.dir, partitionBy: args.target.partitionBy, keep: args.keep, db: args.db,
      address: args.address, actors: args.workers, batchRows: args.batchRows, memoryLimit: args.memoryLimit,
      signal: controller.signal, onStep: (m) => { if (showing) process.stderr.write(`• ${m}\n`); },
    });
    if (args.json) printJson({ ok: true, engine: 'ray', ...result });
    else process.stdout.write(`${result.rows} rows → ${result.output} in ${result.seconds.toFixed(1)} s on Ray (${result.nodes} nodes, ${result.actors} actors; job ${result.timings.run.toFixed(1)} s)\n`);
    return EXIT.ok;
  } catch (error) {
    if (error instanceof batch.ColumnCheckError) throw new PymlError(error.message, EXIT.failure);
    if (error instanceof batch.BatchInterruptedError) throw new PymlError(error.message, 130);
    if (error instanceof Error && /^the Ray (job|driver)/.test(error.message)) throw new PymlError(error.message, EXIT.failure, 'the target was left as it was');
    throw error;
  } finally {
    process.off('SIGINT', onSigint);
  }
}
