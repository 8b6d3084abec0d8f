import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { mkdir, readFile, rename, stat, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { pipeline } from 'node:stream/promises';

/**
 * sha256 (hex) of a file on this machine, streamed. With `cacheDir`, kept by the file's size, mtime and inode, so a
 * rebuild reads no weights twice (the layer itself is reused by the same stats).
 */
export async function fileSha256(file: string, cacheDir?: string): Promise<string> {
  const s = await stat(file);
  const entry = cacheDir && path.join(cacheDir, `${createHash('sha256').update(`${path.resolve(file)}\0${s.size}:${s.mtimeMs}:${s.ino}`).digest('hex').slice(0, 32)}`);
  if (entry) {
    const cached = await readFile(entry, 'utf8').catch(() => '');
    if (/^[0-9a-f]{64}$/.test(cached)) return cached;
  }
  const hash = createHash('sha256');
  await pipeline(createReadStream(file), hash);
  const hex = hash.digest('hex');
  if (entry) {
    await mkdir(cacheDir!, { recursive: true });
    const temp = `${entry}.${process.pid}.tmp`;
    await writeFile(temp, hex);
    await rename(temp, entry);
  }
  return hex;
}
