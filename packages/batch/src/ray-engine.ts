import { createHash, randomBytes } from 'node:crypto';
import { mkdir, readFile, rm, writeFile } from 'node:fs/promises';
import { basename, dirname, join, resolve } from 'node:path';
import { availableParallelism } from 'node:os';
import { bytesPerElement, elementCount } from '@pyml/contract';
import { ownedPrefix, removeDeadRunsLeftovers } from '@pyml/image';
import { entrypointCommand, unpackImage } from '@pyml/launcher';
import type { ColumnPlan } from './column-plan.ts';
import { publishDataset, refuseToReplaceNonDataset } from './dataset-dir.ts';
import { BatchInterruptedError } from './batch-interrupted.ts';
import { rayPython, runRayJob } from './ray-driver.ts';
import { stageQuery } from './ray-stage.ts';

export interface RayBatchOptions {
  /** The image: an OCI layout directory or a tarball (a registry image is pulled into the cache by the caller). */
  image: string;
  query: string;
  /** The Parquet dataset to write (Hive partitions by `partitionBy`). */
  out: string;
  partitionBy?: string[];
  keep?: string[];
  /** A DuckDB database the query may read (opened read-only). */
  db?: string;
  /** A running cluster (`HOST:PORT` of its GCS); default: a local Ray started for this run and stopped after it. */
  address?: string;
  /** Actors, each holding one entrypoint process (default: one per node of the cluster). */
  actors?: number;
  /** CPUs each actor reserves, and the intra-op threads of its model (default 1). */
  cpusPerActor?: number;
  /** Rows per batch an actor sends to its entrypoint (default: about 512 KiB of input, as the local batch). */
  batchRows?: number;
  /** A Python with ray[data] and pyarrow (default: PYML_RAY_PYTHON, else python3). */
  python?: string;
  memoryLimit?: string;
  /** Restarts of a dead actor, and retries of its batches (default 3). */
  maxRestarts?: number;
  signal?: AbortSignal;
  onStep?: (message: string) => void;
}

export interface RayBatchResult {
  rows: number;
  files: number;
  nodes: number;
  actors: number;
  batchRows: number;
  seconds: number;
  output: string;
  packed?: ColumnPlan['packed'];
  /** Seconds per phase: query staged as Parquet, Ray connected (or started), the Ray Data job, the dataset published. */
  timings: { stage: number; connect: number; run: number; publish: number };
}

/**
 * `pyml batch REF --engine ray`: the same image, column plan and output as the local batch, with Ray Data doing the
 * work on a cluster.
 *
 * 1. The image is unpacked here (once per digest); its rootfs path, pyml.json hash and entrypoint command go to the
 *    job. Every node must see that rootfs at the same path (a shared filesystem) or at its PYML_ROOTFS.
 * 2. The query's columns are checked against the signature (planColumns) before anything runs on Ray, and the
 *    query's result is staged as Parquet beside the output, with each input at its tensor's type.
 * 3. python ray_job.py: read_parquet → map_batches through a pool of actors, each with one long-running
 *    `entrypoint batch` process → write_parquet into a temp directory beside the output.
 * 4. Only if the job succeeded and the temp dataset holds exactly the staged row count does it take the output's
 *    name (the earlier dataset moved aside, then deleted). Any failure leaves the output as it was.
 */
export async function runRayBatch(options: RayBatchOptions): Promise<RayBatchResult> {
  const started = performance.now();
  const since = (t: number) => (performance.now() - t) / 1000;
  const step = options.onStep ?? (() => {});
  const keep = options.keep ?? [];
  const partitionBy = options.partitionBy ?? [];
  const out = resolve(options.out);
  const interrupted = () => { if (options.signal?.aborted) throw new BatchInterruptedError(`interrupted; Parquet dataset ${out} was left as it was`); };
  await refuseToReplaceNonDataset(out);

  step(`unpacking ${options.image}`);
  const image = await unpackImage(options.image);
  const signature = image.manifest.signature;
  const cpusPerActor = options.cpusPerActor ?? 1;
  const threads = String(Math.max(1, Math.floor(cpusPerActor)));
  const threadEnv: Record<string, string> = {};
  for (const knob of ['PYML_ORT_THREADS', 'PYML_TORCH_THREADS', 'OMP_NUM_THREADS']) threadEnv[knob] = process.env[knob] ?? threads;
  const command = entrypointCommand(image, ['batch'], threadEnv);
  const pymlJson = await readFile(join(image.pymlRoot, 'pyml.json'));

  // Everything of this run lives in one directory beside the output (on the storage the nodes share with it); a
  // killed run's directory is swept by the next run, as the local batch's temp datasets are.
  const prefix = `.${basename(out)}.pyml-`;
  await mkdir(dirname(out), { recursive: true });
  await removeDeadRunsLeftovers(dirname(out), prefix);
  const work = join(dirname(out), `${ownedPrefix(prefix)}ray-${randomBytes(6).toString('hex')}`);
  await mkdir(work);
  try {
    const stageStarted = performance.now();
    const batchRows = options.batchRows ?? batchRowsFor(signature.inputs);
    step('checking the columns and staging the query as Parquet');
    const staged = await stageQuery({
      query: options.query, db: options.db, signature, keep, partitionBy, dir: join(work, 'input'),
      // DuckDB's row groups are whole 2048-row vectors. Files of 4 batches: enough read tasks to keep every actor busy.
      rowGroupRows: Math.max(2048, batchRows), rowsPerFile: 4 * Math.max(2048, batchRows), memoryLimit: options.memoryLimit, spillDir: join(work, 'spill'),
    });
    const stageSeconds = since(stageStarted);
    const python = rayPython(options.python);
    interrupted();

    const spec = {
      address: options.address ?? null,
      localCpus: Math.max(2, availableParallelism()),
      staged: join(work, 'input'),
      output: join(work, 'output'),
      partitionBy,
      keep,
      inputs: signature.inputs.map((s, n) => ({ ...s, column: staged.inputColumns[n] })),
      outputs: signature.outputs,
      model: `${image.manifest.name}:${image.manifest.version}`,
      manifestDigest: image.manifestDigest,
      rootfs: image.rootfs,
      pymlJsonSha256: createHash('sha256').update(pymlJson).digest('hex'),
      entrypoint: { file: command.file, args: command.args, env: command.env, cwd: command.cwd },
      actors: options.actors ?? null,
      cpusPerActor,
      batchRows,
      maxRestarts: options.maxRestarts ?? 3,
    };
    const specFile = join(work, 'job.json');
    await writeFile(specFile, JSON.stringify(spec));
    step(options.address ? `running the job on the Ray cluster at ${options.address}` : 'running the job on a local Ray started for it');
    const summary = await runRayJob(python, specFile, options.signal);
    interrupted();
    if (summary.rows !== staged.rows) {
      throw new Error(`the Ray job wrote ${summary.rows} rows for ${staged.rows} input rows; ${out} was left as it was`);
    }
    const publishStarted = performance.now();
    step(`writing Parquet dataset ${out}`);
    await publishDataset(join(work, 'output'), out);
    return {
      rows: summary.rows, files: summary.files, nodes: summary.nodes, actors: summary.actors, batchRows,
      seconds: since(started), output: out, ...(staged.plan.packed ? { packed: staged.plan.packed } : {}),
      timings: { stage: stageSeconds, connect: summary.seconds.connect, run: summary.seconds.run, publish: since(publishStarted) },
    };
  } catch (error) {
    if (options.signal?.aborted && !(error instanceof BatchInterruptedError)) throw new BatchInterruptedError(`interrupted; Parquet dataset ${out} was left as it was`);
    throw error;
  } finally {
    await rm(work, { recursive: true, force: true });
  }
}

/** About 512 KiB of input a batch, 2048 to 65536 rows: the local batch's default (run-batch.ts). */
function batchRowsFor(inputs: { dtype: Parameters<typeof bytesPerElement>[0]; shape: number[] }[]): number {
  const rowBytes = inputs.reduce((n, s) => n + elementCount(s.shape.slice(1)) * (bytesPerElement(s.dtype) || 16), 0);
  return Math.max(2048, Math.min(65536, Math.floor((512 << 10) / Math.max(rowBytes, 1) / 2048) * 2048));
}
