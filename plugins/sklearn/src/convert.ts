/**
 * Build-time preparation of a pickled/joblib scikit-learn model (estimator or Pipeline) with python/convert.py
 * and its package python/pyml_sklearn/, run by the Python that has scikit-learn and onnx (Debian's
 * /usr/bin/python3 by default): converted to ONNX, or (runtime 'python', or 'auto' when a step does not convert)
 * described for the Python runtime, which ships the pickle itself. Results are cached by the content of the
 * pickle, the converter's sources and the options, so a rebuild does not start Python.
 */
import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { mkdir, readdir, readFile, rename, rm, stat, writeFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Signature } from '@pyml/contract';

export const CONVERTER = fileURLToPath(new URL('../python/convert.py', import.meta.url));
export const DEFAULT_PYTHON = '/usr/bin/python3';
const CONVERTER_PACKAGE = join(dirname(CONVERTER), 'pyml_sklearn');
/** The Python runtime's model (python/runtime/: the image's sidecar runs it; convert.py imports its sklearn_outputs). */
export const RUNTIME_MODEL = join(dirname(CONVERTER), 'runtime', 'sklearn_model.py');
const RUNTIME_OUTPUTS = join(dirname(CONVERTER), 'runtime', 'sklearn_outputs.py');

/** How the image serves a pickle: converted to ONNX, or the pickle itself with scikit-learn in Python. */
export type SklearnRuntime = 'onnx' | 'python' | 'auto';

export interface ConvertOptions {
  python: string;
  /** Column names for the estimator's features (default: feature_names_in_, else x0, x1, ...). */
  columns?: string[];
  /** Declared dtypes of input columns (pyml DataType names), cast to float64 inside the graph. */
  columnTypes?: Record<string, string>;
  cacheDir: string;
  /** How errors name the pickle. */
  displayPath: string;
  /** Default 'onnx': fail on a step that does not convert. */
  runtime?: SklearnRuntime;
}

/** What the build ships for a pickle, and why (shown by `pyml inspect`). */
export type PreparedPickle =
  | { runtime: 'onnx'; onnx: string; estimator: string; signature: Signature; why: string }
  | { runtime: 'python'; estimator: string; signature: Signature; why: string; sklearn: string };

async function sha256Of(file: string, extra: string): Promise<string> {
  const hash = createHash('sha256').update(extra);
  for await (const chunk of createReadStream(file)) hash.update(chunk as Buffer);
  return hash.digest('hex');
}

function run(cmd: string, args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, { stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d) => (stdout += d));
    child.stderr.on('data', (d) => (stderr += d));
    child.on('error', reject);
    child.on('close', (code) => resolve({ code: code ?? -1, stdout, stderr }));
  });
}

/** The converter's sources, in a fixed order: any change to them invalidates cached conversions. */
async function converterSources(): Promise<string[]> {
  const parts = (await readdir(CONVERTER_PACKAGE)).filter((f) => f.endsWith('.py')).sort();
  return Promise.all([CONVERTER, RUNTIME_OUTPUTS, ...parts.map((f) => join(CONVERTER_PACKAGE, f))].map((f) => readFile(f, 'utf8')));
}

const isFile = (path: string) => stat(path).then((s) => s.isFile(), () => false);

/** Converts `pickle` to ONNX; returns the path of the (cached) .onnx file. */
export async function convertPickle(pickle: string, options: ConvertOptions): Promise<string> {
  const prepared = await preparePickle(pickle, { ...options, runtime: 'onnx' });
  if (prepared.runtime !== 'onnx') throw new Error(`${options.displayPath}: the converter did not write ONNX`);
  return prepared.onnx;
}

/** Converts `pickle` to ONNX or describes it for the Python runtime, as `options.runtime` says (cached). */
export async function preparePickle(pickle: string, options: ConvertOptions): Promise<PreparedPickle> {
  const runtime = options.runtime ?? 'onnx';
  const converter = await converterSources();
  const key = await sha256Of(pickle, JSON.stringify({ converter, columns: options.columns ?? null, columnTypes: options.columnTypes ?? null, python: options.python, runtime }));
  const dir = join(options.cacheDir, 'sklearn');
  const out = join(dir, `${key}.onnx`);
  const about = join(dir, `${key}.json`);
  const cached = await readFile(about, 'utf8').then((text) => JSON.parse(text) as PreparedPickle, () => undefined);
  if (cached && (cached.runtime === 'python' || await isFile(out))) return cached.runtime === 'onnx' ? { ...cached, onnx: out } : cached;
  await mkdir(dir, { recursive: true });
  const tmp = `${out}.${process.pid}.tmp`;
  // -B: no __pycache__ beside the converter (an installed plugin's folder may be read-only).
  const args = ['-B', CONVERTER, pickle, tmp, '--runtime', runtime,
    ...(options.columns ? ['--columns', JSON.stringify(options.columns)] : []),
    ...(options.columnTypes ? ['--column-types', JSON.stringify(options.columnTypes)] : [])];
  let r;
  try {
    r = await run(options.python, args);
  } catch (error) {
    throw new Error(`${options.displayPath}: cannot run ${options.python} to convert the pickle to ONNX (${(error as Error).message}); install python3 with python3-sklearn and python3-onnx, or pass sklearn({ python })`, { cause: error });
  }
  if (r.code !== 0) {
    await rm(tmp, { force: true });
    // The converter's message is its last lines; earlier ones are scikit-learn's warnings.
    const message = r.stderr.trim().split('\n').slice(r.code === 3 ? -2 : -3).join('\n');
    if (r.code === 1 && /ModuleNotFoundError|ImportError/.test(r.stderr)) {
      throw new Error(`${options.displayPath}: ${options.python} cannot import what the converter needs: ${message}; install python3-sklearn and python3-onnx`);
    }
    throw new Error(`${options.displayPath}: ${message || `converter exited with ${r.code}`}`);
  }
  let result: PreparedPickle;
  try {
    result = { ...JSON.parse(r.stdout.trim().split('\n').pop()!), onnx: out } as PreparedPickle;
  } catch {
    await rm(tmp, { force: true });
    throw new Error(`${options.displayPath}: the converter printed no description: ${r.stdout.slice(-500)}`);
  }
  if (result.runtime === 'onnx') await rename(tmp, out);
  else delete (result as { onnx?: string }).onnx;
  const aboutTmp = `${about}.${process.pid}.tmp`;
  await writeFile(aboutTmp, JSON.stringify(result));
  await rename(aboutTmp, about);
  return result;
}
