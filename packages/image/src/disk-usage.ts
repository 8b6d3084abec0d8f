import { lstat, readdir } from 'node:fs/promises';
import { join } from 'node:path';

/** Bytes on disk under `paths`, each inode counted once (hard-linked trees share theirs). */
export async function diskUsage(paths: string[], seen = new Set<string>()): Promise<number> {
  let bytes = 0;
  async function walk(path: string): Promise<void> {
    const info = await lstat(path).catch(() => undefined);
    if (!info) return;
    const id = `${info.dev}:${info.ino}`;
    if (!info.isDirectory()) {
      if (seen.has(id)) return;
      seen.add(id);
    }
    bytes += info.blocks * 512;
    if (info.isDirectory()) for (const name of await readdir(path).catch(() => [] as string[])) await walk(join(path, name));
  }
  for (const path of paths) await walk(path);
  return bytes;
}
