import { spawn } from 'node:child_process';
import { access, readFile } from 'node:fs/promises';
import { text as readAll } from 'node:stream/consumers';
import type { Signature } from '@pyml/contract';
import { entrypointCommand } from '@pyml/launcher';
import { type UnpackImageOptions, unpackImage } from '@pyml/launcher';

/**
 * Makes a V2 request of a CSV file for a signature. The service does not read CSV itself (that is DuckDB, batch's):
 * the CLI passes @pyml/batch's reader, so a file works in predict as it does in batch.
 */
export type CsvRequestReader = (file: string, signature: Signature, options: { keep?: string[] }) => Promise<unknown>;

export interface PredictOnceResult {
  /** The entrypoint's exit code: 0 ok, 1 prediction failed (bad input, model error), 2 usage, 3 init failed. */
  code: number;
  /** The V2 JSON response (pretty unless `json`). */
  stdout: string;
  /** The entrypoint's log lines (JSON lines) and error text. */
  stderr: string;
}

/**
 * Runs an image's entrypoint `predict` once on a V2 JSON request file (`-`: standard input), or a CSV read as
 * `pyml batch` reads one (DuckDB's read_csv, batch's column mapping, --keep columns read past): unpacks the image into the rootfs cache if needed and runs the image's own node on it.
 */
export async function predictOnce(ref: string, inputFile: string, opts: UnpackImageOptions & { json?: boolean; keep?: string[]; csvRequest?: CsvRequestReader } = {}): Promise<PredictOnceResult> {
  const csv = /\.csv$/i.test(inputFile);
  if (opts.keep?.length && !csv) throw new Error('--keep names columns of a CSV --input; a JSON request has none');
  if (csv && !opts.csvRequest) throw new Error(`--input ${inputFile}: this caller reads no CSV; give a V2 JSON request`);
  // A CSV is read by the caller's reader (the CLI's: DuckDB, as pyml batch reads it), loaded only then.
  const text = csv ? await access(inputFile).then(() => '', (error: NodeJS.ErrnoException) => { throw readError(inputFile, error); }) : await readRequest(inputFile);
  const image = await unpackImage(ref, opts);
  const request = csv ? JSON.stringify(await opts.csvRequest!(inputFile, image.manifest.signature, { keep: opts.keep })) : text;
  const cmd = entrypointCommand(image, ['predict', '--input', '-', ...(opts.json ? ['--json'] : [])]);
  return new Promise((resolve, reject) => {
    const child = spawn(cmd.file, cmd.args, { env: cmd.env, cwd: cmd.cwd, stdio: ['pipe', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (d: string) => (stdout += d));
    child.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d));
    child.on('error', (error) => reject(new Error(`cannot run the entrypoint of ${ref}: ${error.message}`)));
    child.on('close', (code, signal) => resolve({ code: code ?? (signal ? 128 : 1), stdout, stderr: signal ? `${stderr}entrypoint killed by ${signal}\n` : stderr }));
    child.stdin.on('error', () => {}); // the child may exit before reading (init failure)
    child.stdin.end(request);
  });
}

/** The request's text, from the file or (for `-`) from standard input. */
async function readRequest(inputFile: string): Promise<string> {
  if (inputFile === '-') return readAll(process.stdin);
  try {
    return await readFile(inputFile, 'utf8');
  } catch (error) {
    throw readError(inputFile, error as NodeJS.ErrnoException);
  }
}

function readError(inputFile: string, e: NodeJS.ErrnoException): Error {
  return new Error(`cannot read --input ${inputFile}: ${e.code === 'ENOENT' ? 'no such file' : e.message}`);
}
