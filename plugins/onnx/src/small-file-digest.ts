import { createHash } from 'node:crypto';
import { readFile, stat } from 'node:fs/promises';

/** Up to this size, hashing a model (a few ms per MB) is cheaper than parsing or trial-loading it again. */
const MAX_HASHED_BYTES = 64 * 2 ** 20;

/**
 * sha256 (hex) of a model file's bytes when it is small enough to be worth hashing, else undefined. It lets the
 * build's per-file caches recognise the same model at another path (a new project holding a copy of a model this
 * machine already checked), where the file's identity (path, size, mtime, inode) differs.
 */
export async function smallFileDigest(path: string): Promise<string | undefined> {
  if ((await stat(path)).size > MAX_HASHED_BYTES) return undefined;
  return createHash('sha256').update(await readFile(path)).digest('hex');
}
