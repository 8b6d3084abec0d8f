import { mkdir, rename, rm, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { BlobStore, pymlCacheDir } from '@pyml/image';
import { digestHex } from '@pyml/image/digest';
import { pullImage, type PullOptions } from './pull-image.ts';
import { looksLikeRegistryRef } from './reference.ts';

export interface LocalImage {
  /** A layout directory or tarball on this machine. */
  path: string;
  /** Set when the image came from a registry: what the pull did. */
  pulled?: { digest: string; downloaded: number; reused: number };
}

/**
 * Where an image REF is on this machine, for the commands that run images (serve, predict, batch). A layout
 * directory or tarball is used as it is. A registry image (`HOST/REPO:TAG`, `docker://…`, `…@sha256:…`) is
 * pulled into the cache, `$PYML_CACHE_DIR/pulled/<manifest digest>`: the manifest is asked for every time (a tag
 * moves), while blobs the cache already holds (from an earlier pull, or from the build that made the image) are
 * linked rather than downloaded. A pulled layout is named by its digest and never changes, so processes still
 * running an older pull of the same tag keep reading theirs.
 */
export async function localImage(ref: string, options: Pick<PullOptions, 'platform' | 'log' | 'onProgress'> = {}): Promise<LocalImage> {
  const isLocal = await stat(ref).then(() => true, () => false);
  if (isLocal || !looksLikeRegistryRef(ref)) return { path: ref };
  const pulledDir = join(pymlCacheDir(), 'pulled');
  await mkdir(pulledDir, { recursive: true });
  const temp = join(pulledDir, `.pull-${process.pid}-${Date.now().toString(36)}`);
  try {
    const result = await pullImage(ref, temp, { ...options, store: new BlobStore() });
    const path = join(pulledDir, digestHex(result.digest));
    const reused = result.blobs.filter((b) => b.reused).length;
    const pulled = { digest: result.digest, downloaded: result.blobs.length - reused, reused };
    if (await stat(path).then(() => true, () => false)) return { path, pulled };
    try {
      await rename(temp, path);
    } catch (error) {
      // Another process put the same digest in place first: theirs is the same image.
      if (!(await stat(path).then(() => true, () => false))) throw error;
    }
    return { path, pulled };
  } finally {
    await rm(temp, { recursive: true, force: true });
  }
}
