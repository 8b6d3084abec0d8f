/**
 * Build-time conversion of a pickled/joblib scikit-learn model (estimator or Pipeline) to ONNX with
 * python/convert.py and its package python/pyml_sklearn/, run by the Python that has scikit-learn and onnx
 * (Debian's /usr/bin/python3 by default). Results are cached by the content of the pickle, the converter's
 * sources and the options, so a rebuild does not start Python.
 */
import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { mkdir, readdir, readFile, rename, rm, stat } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

export const CONVERTER = fileURLToPath(new URL('../python/convert.py', import.meta.url));
export const DEFAULT_PYTHON = '/usr/bin/python3';
const CONVERTER_PACKAGE = join(dirname(CONVERTER), 'pyml_sklearn');

export interface ConvertOptions {
  python: string;
  /** Column names for the estimator's features (default: feature_names_in_, else x0, x1, ...). */
  columns?: string[];
  /** Declared dtypes of input columns (pyml DataType names), cast to float64 inside the graph. */
  columnTypes?: Record<string, string>;
  cacheDir: string;
  /** How errors name the pickle. */
  displayPath: string;
}

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
  return Promise.all([CONVERTER, ...parts.map((f) => join(CONVERTER_PACKAGE, f))].map((f) => readFile(f, 'utf8')));
}

/** Converts `pickle` to ONNX; returns the path of the (cached) .onnx file. */
export async function convertPickle(pickle: string, options: ConvertOptions): Promise<string> {
  const converter = await converterSources();
  const key = await sha256Of(pickle, JSON.stringify({ converter, columns: options.columns ?? null, columnTypes: options.columnTypes ?? null, python: options.python }));
  const dir = join(options.cacheDir, 'sklearn');
  const out = join(dir, `${key}.onnx`);
  if (await stat(out).then((s) => s.isFile(), () => false)) return out;
  await mkdir(dir, { recursive: true });
  const tmp = `${out}.${process.pid}.tmp`;
  // -B: no __pycache__ beside the converter (an installed plugin's folder may be read-only).
  const args = ['-B', CONVERTER, pickle, tmp,
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
  await rename(tmp, out);
  return out;
}
