import { parseCommandArgs } from '../args.ts';
import { EXIT, PymlError } from '@pyml/errors';
import { predictOnce } from '@pyml/serve/predict-once';
import { localImagePaths } from '../local-images.ts';
import { projectConfigIn } from '../check-image.ts';
import { usage } from '../output.ts';
import { applyMaxUnpackedBytes, maxUnpackedHelp, maxUnpackedOption } from '../max-unpacked-option.ts';

export const help = `Usage: pyml predict REF --input FILE [options]

Runs an image once on one request and prints the outputs, with no server: the image is unpacked into the cache
($PYML_CACHE_DIR/rootfs, once per digest) and its own entrypoint runs with the image's own Node runtime.
REF is an OCI image layout directory, an image tarball, a registry image (HOST[:PORT]/REPO:TAG, pulled into
$PYML_CACHE_DIR/pulled; blobs the cache holds are not downloaded again) or an engine's image
(docker-daemon:NAME:TAG, via DOCKER_HOST), or a model project directory (pyml.config.ts), built first through the
cache as pyml build does (progress on stderr).
FILE is an Open Inference Protocol (V2) JSON request ({"inputs":[{"name","datatype","shape","data"}]}), or a
.csv file with a header row, read as pyml batch reads one (DuckDB's read_csv, the same columns → inputs): a column
named like an input feeds it; a model with one [-1, K] input that no column is named after gets the K columns
besides --keep, in file order; every other column must be a --keep column (read past: the response has the
model's outputs, one row per CSV row). A number column is read at its input's type (no ::FLOAT needed).

Options:
  --input FILE   the request (.json; - reads it from stdin) or columns (.csv)
  --keep COL     a CSV column that is not a model input, e.g. an id (repeatable, or comma-separated; as batch's)
  --json         print one line: ok and the V2 JSON response (schemas/predict-output.schema.json)
  --verbose      also print the model's log lines (stderr)
${maxUnpackedHelp(15)}
  -h, --help     show this help

Examples:
  pyml predict /tmp/iris --input examples/onnx-iris/sample.json
  pyml predict /tmp/iris.tar --input request.json --json | jq .outputs
  pyml predict /tmp/iris --input examples/onnx-iris/sample.csv --keep id
  pyml predict examples/onnx-iris --input examples/onnx-iris/sample.json   # builds the project, then runs it
`;

/** The runtime's stderr: JSON log lines and plain error lines. Shows errors and warnings, or everything. */
function modelMessages(stderr: string, verbose: boolean): string[] {
  const out: string[] = [];
  for (const line of stderr.split('\n')) {
    if (!line.trim()) continue;
    let entry: { level?: string; msg?: string; error?: string } | undefined;
    try {
      entry = JSON.parse(line) as typeof entry;
    } catch {
      out.push(line);
      continue;
    }
    if (verbose || entry?.level === 'error' || entry?.level === 'warn') out.push(verbose ? line : `${entry?.msg}${entry?.error ? `: ${entry.error}` : ''}`);
  }
  return out;
}

export async function run(args: string[]): Promise<number> {
  const { values, positionals } = parseCommandArgs('predict', {
    args, allowPositionals: true,
    options: { input: { type: 'string' }, keep: { type: 'string', multiple: true }, json: { type: 'boolean', default: false }, verbose: { type: 'boolean', default: false }, help: { type: 'boolean', short: 'h' }, ...maxUnpackedOption },
  });
  if (values.help) { process.stdout.write(help); return EXIT.ok; }
  applyMaxUnpackedBytes(values['max-unpacked-bytes']);
  const [ref, ...rest] = positionals;
  if (!ref || rest.length) throw usage('usage: pyml predict REF --input FILE [--json]');
  if (!values.input) throw usage('pyml predict needs --input FILE (a V2 JSON request or a CSV)');
  const keep = (values.keep ?? []).flatMap((v) => v.split(',')).map((v) => v.trim()).filter(Boolean);
  if (keep.length && !/\.csv$/i.test(values.input)) throw usage('--keep names columns of a CSV --input; a JSON request has none');
  const project = await projectConfigIn(ref) ? await (await import('../dev-loop.ts')).buildProject(ref, { json: values.json! }) : undefined;
  const [image] = project ? [project.layout] : await localImagePaths([ref], { json: values.json!, told: (m) => { if (!values.json) process.stderr.write(`${m}\n`); } });
  let result;
  try {
    result = await predictOnce(image, values.input, {
      json: values.json, keep,
      // A CSV is read as pyml batch reads it (DuckDB and batch's column mapping), loaded only for a CSV.
      csvRequest: async (file, signature, options) => (await import('@pyml/batch/csv-request')).csvToV2Request(file, signature, options),
    });
  } catch (error) {
    const message = (error as Error).message;
    throw new PymlError(message, /ENOENT|no such file/.test(message) ? EXIT.usage : EXIT.failure);
  }
  if (result.code === 0) {
    if (values.verbose) for (const m of modelMessages(result.stderr, true)) process.stderr.write(`${m}\n`);
    // The model's warnings are shown whatever the output mode (--json, --progress quiet): stderr, never stdout.
    else for (const m of modelMessages(result.stderr, false)) process.stderr.write(`warning: ${m}\n`);
    // --json: one line, the V2 response with ok: true first, as every command's --json (schemas/predict-output.schema.json).
    process.stdout.write(values.json ? `${JSON.stringify({ ok: true, ...(JSON.parse(result.stdout) as object) })}\n` : result.stdout);
    return EXIT.ok;
  }
  const messages = modelMessages(result.stderr, values.verbose);
  const what = result.code === 3 ? 'the model failed to start' : `prediction failed for ${values.input === '-' ? 'the request on stdin' : values.input}`;
  throw new PymlError(`${what}: ${messages.join('\n') || `entrypoint exited with ${result.code}`}`, EXIT.failure);
}
