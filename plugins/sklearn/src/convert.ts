/**
 * Build-time conversion of a pickled/joblib scikit-learn estimator to ONNX with python/convert.py, run by the
 * Python that has scikit-learn and onnx (Debian's /usr/bin/python3 by default). Results are cached by the
 * content of the pickle, the converter and the options, so a rebuild does not start Python.
 */
import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { mkdir, readFile, rename, rm, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

export const CONVERTER = fileURLToPath(new URL('../python/convert.py', import.meta.url));
export const DEFAULT_PYTHON = '/usr/bin/python3';

export interface ConvertOptions {
  python: string;
  /** Column names for the estimator's features (default: feature_names_in_, else x0, x1, ...). */
  columns?: string[];
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

/** Converts `pickle` to ONNX; returns the path of the (cached) .onnx file. */
export async function convertPickle(pickle: string, options: ConvertOptions): Promise<string> {
  const converter = await readFile(CONVERTER, 'utf8');
  const key = await sha256Of(pickle, JSON.stringify({ converter, columns: options.columns ?? null, python: options.python }));
  const dir = join(options.cacheDir, 'sklearn');
  const out = join(dir, `${key}.onnx`);
  if (await stat(out).then((s) => s.isFile(), () => false)) return out;
  await mkdir(dir, { recursive: true });
  const tmp = `${out}.${process.pid}.tmp`;
  const args = [CONVERTER, pickle, tmp, ...(options.columns ? ['--columns', JSON.stringify(options.columns)] : [])];
  let r;
  try {
    r = await run(options.python, args);
  } catch (error) {
    throw new Error(`${options.displayPath}: cannot run ${options.python} to convert the pickle to ONNX (${(error as Error).message}); install python3 with python3-sklearn and python3-onnx, or pass sklearn({ python })`, { cause: error });
  }
  if (r.code !== 0) {
    await rm(tmp, { force: true });
    const message = r.stderr.trim().split('\n').slice(-3).join('\n');
    if (r.code === 1 && /ModuleNotFoundError|ImportError/.test(r.stderr)) {
      throw new Error(`${options.displayPath}: ${options.python} cannot import what the converter needs: ${message}; install python3-sklearn and python3-onnx`);
    }
    throw new Error(`${options.displayPath}: ${message || `converter exited with ${r.code}`}`);
  }
  await rename(tmp, out);
  return out;
}
