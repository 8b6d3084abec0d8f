import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdir, readFile, rename, stat, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { promisify } from 'node:util';

const run = promisify(execFile);

/** System directories whose libraries a base or dependency layer may copy. */
const SYSTEM_LIB_DIRS = ['/lib/', '/lib64/', '/usr/lib/', '/usr/lib64/'];
/** ldconfig rewrites it whenever libraries are installed or removed: what ldd resolves changes only with it. */
const LD_CACHE = '/etc/ld.so.cache';

/**
 * The system shared libraries an ELF file loads, as `ldd` resolves them on this machine (path as loaded, e.g.
 * /lib/x86_64-linux-gnu/libc.so.6). Libraries that live outside system directories (a package's own .so next to
 * its .node file) are left to the layer that ships the file. With `cacheDir`, the answer is kept by the stats of
 * the file and of the loader's cache, so a rebuild runs no ldd (~0.2 s for node itself).
 */
export async function sharedLibrariesOf(file: string, cacheDir?: string): Promise<string[]> {
  if (!cacheDir) return lddLibraries(file);
  const stamp = (await Promise.all([file, LD_CACHE].map((f) => stat(f).then((s) => `${f}:${s.size}:${s.mtimeMs}:${s.ino}`, () => `${f}:missing`)))).join('|');
  const entry = path.join(cacheDir, `${createHash('sha256').update(stamp).digest('hex').slice(0, 32)}.json`);
  const cached = await readFile(entry, 'utf8').then((t) => JSON.parse(t) as unknown, () => undefined);
  if (Array.isArray(cached) && cached.every((l) => typeof l === 'string')) return cached as string[];
  const libraries = await lddLibraries(file);
  await mkdir(cacheDir, { recursive: true });
  const temp = `${entry}.${process.pid}.tmp`;
  await writeFile(temp, JSON.stringify(libraries));
  await rename(temp, entry);
  return libraries;
}

async function lddLibraries(file: string): Promise<string[]> {
  let stdout: string;
  try {
    ({ stdout } = await run('ldd', [file]));
  } catch (err) {
    const text = String((err as { stdout?: string }).stdout ?? '') + String((err as { stderr?: string }).stderr ?? '');
    if (/not a dynamic executable|statically linked/.test(text)) return [];
    throw new Error(`ldd ${file} failed: ${text.trim() || (err as Error).message}`);
  }
  const libs = new Set<string>();
  for (const line of stdout.split('\n')) {
    const missing = /^\s*(\S+) => not found/.exec(line);
    if (missing) throw new Error(`${file} needs ${missing[1]}, which is not installed on this machine`);
    const m = /=>\s+(\/\S+)\s+\(/.exec(line) ?? /^\s*(\/\S+)\s+\(/.exec(line);
    if (m && SYSTEM_LIB_DIRS.some((d) => m[1]!.startsWith(d))) libs.add(m[1]!);
  }
  return [...libs].sort();
}

export function isNativeFile(p: string): boolean {
  return p.endsWith('.node') || /\.so(\.\d+)*$/.test(p);
}
