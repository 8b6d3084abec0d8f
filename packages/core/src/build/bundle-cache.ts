import { mkdir, readFile, rename, stat, writeFile } from 'node:fs/promises';
import path from 'node:path';

/** Each input file's stamp: size, mtime and inode change with any edit (and "missing" stays missing). */
type InputStamps = Record<string, string>;

interface CachedBundle<T> {
  inputs: InputStamps;
  value: T;
}

/**
 * A bundle kept on disk with the stamps of every file esbuild read to make it (its metafile inputs): while none of
 * them changed, the bundle is reused for the cost of a stat per input, instead of starting esbuild.
 */
export async function cachedBundle<T>(file: string, make: () => Promise<{ value: T; inputs: string[] }>): Promise<T> {
  const cached = await readFile(file, 'utf8').then((t) => JSON.parse(t) as CachedBundle<T>, () => undefined);
  if (cached?.inputs && cached.value !== undefined && (await stampsUnchanged(cached.inputs))) return cached.value;
  const { value, inputs } = await make();
  const stamps: InputStamps = {};
  for (const input of inputs) stamps[input] = await stampOf(input);
  await mkdir(path.dirname(file), { recursive: true });
  // Written under a temp name then renamed: a concurrent build reads the old entry or the new one, never half.
  const temp = `${file}.${process.pid}.tmp`;
  await writeFile(temp, JSON.stringify({ inputs: stamps, value } satisfies CachedBundle<T>));
  await rename(temp, file);
  return value;
}

async function stampOf(file: string): Promise<string> {
  const s = await stat(file).catch(() => undefined);
  return s ? `${s.size}:${s.mtimeMs}:${s.ino}` : 'missing';
}

async function stampsUnchanged(inputs: InputStamps): Promise<boolean> {
  const checks = await Promise.all(Object.entries(inputs).map(async ([file, stamp]) => (await stampOf(file)) === stamp));
  return checks.every(Boolean);
}
