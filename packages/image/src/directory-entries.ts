import { lstat, readdir, readlink } from 'node:fs/promises';
import { join, posix } from 'node:path';
import type { FileEntry } from './file-entry.ts';

/**
 * The entries for a host directory tree placed at `imageDir`: files by source (streamed later), symlinks kept
 * as symlinks, empty directories kept. Sockets, FIFOs and devices are skipped: they do not belong in a layer.
 */
export async function directoryEntries(hostDir: string, imageDir: string): Promise<FileEntry[]> {
  const entries: FileEntry[] = imageDir === '/' ? [] : [{ path: imageDir, directory: true }];
  async function walk(host: string, image: string): Promise<void> {
    for (const name of (await readdir(host)).sort()) {
      const hostPath = join(host, name);
      const imagePath = posix.join(image, name);
      const info = await lstat(hostPath);
      if (info.isDirectory()) {
        entries.push({ path: imagePath, directory: true });
        await walk(hostPath, imagePath);
      } else if (info.isSymbolicLink()) {
        entries.push({ path: imagePath, linkTarget: await readlink(hostPath) });
      } else if (info.isFile()) {
        entries.push({ path: imagePath, source: hostPath, mode: info.mode });
      }
    }
  }
  await walk(hostDir, imageDir);
  return entries;
}
