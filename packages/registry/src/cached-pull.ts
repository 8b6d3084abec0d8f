import { mkdir, rename, rm, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { BlobStore, pymlCacheDir } from '@pyml/image';
import { digestHex } from '@pyml/image/digest';
import { pullImage, type PullOptions } from './pull-image.ts';

export interface CachedPull {
  /** The pulled image's OCI layout directory. */
  path: string;
  digest: string;
  /** Blobs downloaded, and blobs the cache already held. */
  downloaded: number;
  reused: number;
}

/**
 * Pulls a registry image (`HOST/REPO:TAG`, `docker://…`, `…@sha256:…`) into the cache, for the commands that run
 * images (serve, predict, batch): `$PYML_CACHE_DIR/pulled/<manifest digest>`. The manifest is asked for every time
 * (a tag moves), while blobs the cache already holds (from an earlier pull, or from the build that made the image)
 * are linked rather than downloaded. A pulled layout is named by its digest and never changes, so processes still
 * running an older pull of the same tag keep reading theirs.
 */
export async function pullIntoCache(ref: string, options: Pick<PullOptions, 'platform' | 'log' | 'onProgress'> = {}): Promise<CachedPull> {
  const pulledDir = join(pymlCacheDir(), 'pulled');
  await mkdir(pulledDir, { recursive: true });
  const temp = join(pulledDir, `.pull-${process.pid}-${Date.now().toString(36)}`);
  try {
    const result = await pullImage(ref, temp, { ...options, store: new BlobStore() });
    const path = join(pulledDir, digestHex(result.digest));
    const reused = result.blobs.filter((b) => b.reused).length;
    const pulled = { path, digest: result.digest, downloaded: result.blobs.length - reused, reused };
    if (await exists(path)) return pulled;
    try {
      await rename(temp, path);
    } catch (error) {
      // Another process put the same digest in place first: theirs is the same image.
      if (!(await exists(path))) throw error;
    }
    return pulled;
  } finally {
    await rm(temp, { recursive: true, force: true });
  }
}

function exists(path: string): Promise<boolean> {
  return stat(path).then(() => true, () => false);
}
