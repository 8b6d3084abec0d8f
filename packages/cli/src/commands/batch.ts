import { availableParallelism } from 'node:os';
import { resolve } from 'node:path';
import { parseCommandArgs } from '../args.ts';
import { EXIT, PymlError } from '@pyml/errors';
import type { BatchProgress, OutputTarget } from '@pyml/batch';
import type { importLocalBatch } from '@pyml/batch/model-processes';
import { localImagePaths } from '../local-images.ts';
import { printJson, showProgress, usage } from '../output.ts';
import { Progress } from '../progress.ts';
import { applyMaxUnpackedBytes, maxUnpackedHelp, maxUnpackedOption } from '../max-unpacked-option.ts';

// @pyml/batch (DuckDB, Apache Arrow) loads only once the arguments are good, and after the model processes have been
// started: their start-up (node, onnxruntime, the model's init) then overlaps the loading of those modules.

export const help = `Usage: pyml batch REF --query SQL (--into TABLE --db FILE.duckdb | --out DIR --format parquet [--partition-by COL]) [options]
       pyml batch REF --query SQL --into TABLE --emit-spark job.py [--keep COL...]

Runs a SQL query (DuckDB: read_parquet, read_csv, tables of --db) through the image's model, one prediction per row,
into a DuckDB table or a Hive-partitioned Parquet dataset. The target is replaced only when every row succeeded.
REF is an OCI image layout directory, an image tarball, a registry image (HOST[:PORT]/REPO:TAG, pulled into
$PYML_CACHE_DIR/pulled) or an engine's image (docker-daemon:NAME:TAG); with --emit-spark the job names REF, the
image its executors run.

Columns: a query column named like a model input feeds it (its type may widen losslessly: INTEGER → BIGINT,
FLOAT → DOUBLE; not DOUBLE → FLOAT, cast in the query for that). A model with one input of shape [-1, K] that no
column is named after gets the query's K columns besides --keep, in query order, packed into it. Every other column
must be a --keep column. Output columns: --keep columns, then one column per model output ([-1, K] → FLOAT[K]).

Options:
  --query SQL            the rows to predict (required)
  --into TABLE           write a table (TABLE or SCHEMA.TABLE) of the --db database
  --db FILE.duckdb       the DuckDB database to write to (--into) or read tables from
  --out DIR              write a Parquet dataset directory
  --format parquet       the dataset format (parquet)
  --partition-by COL     Hive-partition the dataset by a --keep column (repeatable; kept automatically)
  --keep COL             copy a query column to the output unchanged (repeatable, or comma-separated)
  --workers N            model processes in parallel (default: ${availableParallelism()}, the number of cores)
  --batch-rows N         rows per Arrow record batch (default: about 512 KiB of input, 2048 to 65536 rows)
  --memory-limit SIZE    DuckDB memory limit (default 256MB; staging spills to disk past it)
  --emit-spark FILE      write a PySpark job (mapInArrow through the image's batch entrypoint) instead of running
  --engine local|ray     where the rows run: here (default), or Ray Data (--out only; --workers sets its actors)
  --ray-address H:P      the Ray cluster for --engine ray (default: a local Ray started for the run)
  --json                 print a JSON summary (rows, seconds, output)
${maxUnpackedHelp(25)}
  -h, --help             show this help

Examples:
  pyml batch /tmp/iris --query "SELECT id, sepal_length, sepal_width, petal_length, petal_width FROM read_parquet('data/*.parquet')" \\
      --into predictions --db warehouse.duckdb --keep id
  pyml batch /tmp/iris --query "SELECT id, ds, * EXCLUDE (id, ds) FROM read_parquet('data/*.parquet')" \\
      --out predictions/ --format parquet --partition-by ds --keep id
`;

/** What runs a query here: @pyml/batch's local run, bundled when pyml runs compiled. */
type LocalBatch = Awaited<ReturnType<typeof importLocalBatch>>['module'];

/** `--keep a,b`, `--keep a --keep b`. */
function listOption(values: string[] | undefined): string[] {
  return (values ?? []).flatMap((v) => v.split(',')).map((v) => v.trim()).filter(Boolean);
}

function positiveInt(value: string | undefined, flag: string): number | undefined {
  if (value === undefined) return undefined;
  const n = Number(value);
  if (!Number.isSafeInteger(n) || n < 1) throw usage(`${flag} must be a positive integer, got ${JSON.stringify(value)}`);
  return n;
}

export async function run(args: string[]): Promise<number> {
  const { values, positionals } = parseCommandArgs('batch', {
    args, allowPositionals: true,
    options: {
      query: { type: 'string' }, into: { type: 'string' }, db: { type: 'string' }, out: { type: 'string' },
      format: { type: 'string' }, 'partition-by': { type: 'string', multiple: true }, keep: { type: 'string', multiple: true },
      workers: { type: 'string' }, 'batch-rows': { type: 'string' }, 'memory-limit': { type: 'string' },
      'emit-spark': { type: 'string' }, engine: { type: 'string' }, 'ray-address': { type: 'string' }, json: { type: 'boolean', default: false }, help: { type: 'boolean', short: 'h' },
      ...maxUnpackedOption,
    },
  });
  if (values.help) { process.stdout.write(help); return EXIT.ok; }
  applyMaxUnpackedBytes(values['max-unpacked-bytes']);
  const [ref, ...rest] = positionals;
  if (!ref) throw usage('pyml batch needs an image: pyml batch REF --query SQL ...');
  if (rest.length) throw usage(`unexpected argument '${rest[0]}' (give each --keep column its own --keep, or separate them with commas)`);
  if (!values.query) throw usage('pyml batch needs --query SQL');
  const partitionBy = listOption(values['partition-by']);
  const keep = listOption(values.keep);
  for (const p of partitionBy) if (!keep.includes(p)) keep.push(p);
  const json = values.json;
  const local = () => localImagePaths([ref], { json, told: (m) => { if (!json) process.stderr.write(`${m}\n`); } }).then(([path]) => path);

  if (values['emit-spark']) {
    if (!values.into) throw usage('--emit-spark needs --into TABLE (the Spark table to write)');
    const image = await local();
    const { writeSparkJob } = await import('@pyml/batch/spark-job');
    const written = await writeSparkJob({ image: ref, imagePath: image, query: values.query, table: values.into, keep, partitionBy, file: values['emit-spark'] });
    if (json) printJson({ ok: true, spark: written });
    else process.stdout.write(`wrote ${written.file}\n`);
    return EXIT.ok;
  }

  let target: OutputTarget;
  if (values.into) {
    if (values.out) throw usage('give either --into TABLE --db FILE or --out DIR, not both');
    if (!values.db) throw usage('--into TABLE needs --db FILE.duckdb');
    if (partitionBy.length) throw usage('--partition-by applies to --out datasets');
    target = { kind: 'table', db: values.db, table: values.into };
  } else if (values.out) {
    if ((values.format ?? 'parquet') !== 'parquet') throw usage(`--format ${values.format}: only parquet is supported`);
    target = { kind: 'parquet', dir: values.out, partitionBy };
    // Before any row runs: the dataset replaces the whole directory, which must not hold someone's other files.
    const { refuseToReplaceNonDataset } = await import('@pyml/batch/dataset-dir');
    await refuseToReplaceNonDataset(resolve(values.out)).catch((error: Error) => {
      throw new PymlError(error.message, EXIT.usage, 'give --out a new path, an empty directory, or an earlier dataset');
    });
  } else throw usage('pyml batch needs a target: --into TABLE --db FILE.duckdb, or --out DIR --format parquet');

  const engine = values.engine ?? (values['ray-address'] ? 'ray' : 'local');
  if (engine !== 'local' && engine !== 'ray') throw usage(`--engine ${engine}: expected local or ray`);
  if (engine === 'ray') {
    const { runBatchOnRay } = await import('../batch-on-ray.ts');
    return runBatchOnRay({
      ref, image: local, query: values.query, target, db: values.db, keep, json, address: values['ray-address'],
      workers: positiveInt(values.workers, '--workers'), batchRows: positiveInt(values['batch-rows'], '--batch-rows'), memoryLimit: values['memory-limit'],
    });
  }
  const workers = positiveInt(values.workers, '--workers') ?? availableParallelism();
  const batchRows = positiveInt(values['batch-rows'], '--batch-rows');
  const image = await local();
  const showing = showProgress({ json });
  const progress = new Progress(showing);
  const controller = new AbortController();
  const onSigint = () => controller.abort();
  process.on('SIGINT', onSigint);
  let failures: LocalBatch | undefined;
  try {
    progress.step(`unpacking ${ref}`);
    const { startModelProcesses, importLocalBatch } = await import('@pyml/batch/model-processes');
    // The model processes are spawned before @pyml/batch loads, so nothing delays their start.
    const models = await startModelProcesses(image, workers);
    let batch: LocalBatch;
    try {
      batch = failures = (await importLocalBatch()).module;
    } catch (error) {
      await models.kill();
      throw error;
    }
    const result = await batch.runBatch({
      image, query: values.query, target, db: values.db, keep, workers, models, batchRows,
      memoryLimit: values['memory-limit'],
      signal: controller.signal,
      onStep: (m) => progress.step(m),
      // Only on a terminal: progress makes runBatch count the query's rows beside the run, for the ETA (CI logs
      // get the steps only, not a second pass over the query).
      ...(progress.mode === 'tty' ? { onProgress: (p: BatchProgress) => progress.status(formatProgress(p)) } : {}),
    });
    progress.clear();
    // Every count a number (the model processes' PYML_ORT_THREADS is a string in the environment).
    const threads = /^\d+$/.test(result.threads) ? Number(result.threads) : null;
    if (json) printJson({ ok: true, ...result, threads });
    else process.stdout.write(`${result.rows} rows → ${result.output} in ${result.seconds.toFixed(1)} s (${Math.round(result.rows / result.seconds)} rows/s, ${result.workers} workers)\n`);
    return EXIT.ok;
  } catch (error) {
    progress.clear();
    if (failures) {
      const { ColumnCheckError, BatchFailedError, BatchInterruptedError } = failures;
      if (error instanceof ColumnCheckError || error instanceof BatchFailedError || error instanceof BatchInterruptedError) {
        const hint = error instanceof BatchFailedError ? 'the target was left as it was' : undefined;
        throw new PymlError(error.message, error instanceof BatchInterruptedError ? 130 : EXIT.failure, hint);
      }
    }
    throw error;
  } finally {
    process.off('SIGINT', onSigint);
  }
}

function formatProgress(p: BatchProgress): string {
  const rate = p.seconds > 0 ? p.rows / p.seconds : 0;
  const total = p.total;
  const eta = rate > 0 && total !== undefined && total > p.rows ? `, ETA ${Math.ceil((total - p.rows) / rate)} s` : '';
  const pct = total ? ` (${Math.floor((p.rows / total) * 100)}%)` : '';
  return `  ${p.rows}${total === undefined ? '' : `/${total}`} rows${pct}, ${Math.round(rate)} rows/s${eta}`;
}
