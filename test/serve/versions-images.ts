import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { pyml } from '../helpers/cli.ts';
import { buildImages } from './fixtures.ts';

/**
 * Versions of the echo model (fixtures.ts: x FP32 [-1,2] → y = x, sleeping max(x[:,1]) ms), each a real image built
 * with `pyml build` from the same project with only `version` changed: the response's model_version tells which
 * version answered.
 */
export async function buildEchoVersions(versions: string[]): Promise<{ dir: string; images: Record<string, string>; cleanup(): Promise<void> }> {
  const built = await buildImages(['echo']);
  const project = join(built.dir, 'echo-project');
  const config = await readFile(join(project, 'pyml.config.ts'), 'utf8');
  const images: Record<string, string> = {};
  for (const version of versions) {
    await writeFile(join(project, 'pyml.config.ts'), config.replace("version: '0.1.0'", `version: '${version}'`));
    const out = join(built.dir, `echo-v${version}`);
    const r = await pyml(['build', project, '--out', out, '--tar', `${out}.tar`, '--json']);
    if (r.code !== 0) throw new Error(`pyml build of echo version ${version} failed (${r.code}): ${r.stderr}`);
    images[version] = out;
  }
  return { dir: built.dir, images, cleanup: built.cleanup };
}

/** A REST echo request body: one row [value, delayMs]. */
export function echoJson(value: number, delayMs = 0): string {
  return JSON.stringify({ inputs: [{ name: 'x', datatype: 'FP32', shape: [1, 2], data: [value, delayMs] }] });
}

/** POSTs a REST infer; the status, the answering version (or the error). */
export async function inferRest(base: string, path: string, body: string, headers: Record<string, string> = {}): Promise<{ status: number; version?: string; error?: string }> {
  const res = await fetch(`http://${base}${path}`, { method: 'POST', body, headers: { 'content-type': 'application/json', ...headers } });
  const parsed = await res.json() as { model_version?: string; error?: string };
  return { status: res.status, version: parsed.model_version, error: parsed.error };
}

/** Runs `n` calls of `one` with `concurrency` at a time; their results in order. */
export async function runConcurrently<T>(n: number, concurrency: number, one: (i: number) => Promise<T>): Promise<T[]> {
  const results: T[] = new Array(n);
  let next = 0;
  await Promise.all(Array.from({ length: concurrency }, async () => {
    while (next < n) {
      const i = next++;
      results[i] = await one(i);
    }
  }));
  return results;
}
