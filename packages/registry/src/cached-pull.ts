import { mkdir, readFile, rename, rm, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { BlobStore, digestHex, markUsed, openImage, pymlCacheDir } from '@pyml/image';
import { linkOrCopy } from './link-or-copy.ts';
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
  const pulledDir = await cachePulledDir();
  const temp = join(pulledDir, `.pull-${process.pid}-${Date.now().toString(36)}`);
  try {
    const result = await pullImage(ref, temp, { ...options, store: new BlobStore() });
    const path = join(pulledDir, digestHex(result.digest));
    const reused = result.blobs.filter((b) => b.reused).length;
    const pulled = { path, digest: result.digest, downloaded: result.blobs.length - reused, reused };
    if (await exists(path)) {
      await recordPulledRef(path, result.ref);
      await markUsed(path);
      return pulled;
    }
    await recordPulledRef(temp, result.ref);
    try {
      await rename(temp, path);
    } catch (error) {
      // Another process put the same digest in place first: theirs is the same image.
      if (!(await exists(path))) throw error;
      await recordPulledRef(path, result.ref);
    }
    return pulled;
  } finally {
    await rm(temp, { recursive: true, force: true });
  }
}

/**
 * Saves an engine's image (`docker-daemon:NAME:TAG`, through DOCKER_HOST) into the cache as a tarball named by its
 * manifest digest, `$PYML_CACHE_DIR/pulled/<digest>.tar`, for the commands that run images.
 */
export async function saveEngineImageIntoCache(name: string): Promise<{ path: string; digest: string }> {
  // dockerode is slow to import: loaded only for engine refs.
  const { saveFromEngine } = await import('./docker-engine.ts');
  const saved = await saveFromEngine(name);
  try {
    const source = await openImage(saved.file);
    const digest = source.manifestDigest;
    await source.close();
    const path = join(await cachePulledDir(), `${digestHex(digest)}.tar`);
    if (await exists(path)) await markUsed(path);
    else {
      // The engine's temp dir may be on another filesystem: linked or copied beside the target, then renamed.
      const temp = `${path}.${process.pid}.tmp`;
      try {
        await linkOrCopy(saved.file, temp);
        await rename(temp, path);
      } finally {
        await rm(temp, { force: true });
      }
    }
    return { path, digest };
  } finally {
    await rm(saved.dir, { recursive: true, force: true });
  }
}

/**
 * The references a cached layout was pulled as (`{"refs": ["HOST/REPO:TAG", …]}`), kept beside its index.json for
 * `pyml images`: the layout itself names only the tag.
 */
export const PULLED_REFS_FILE = 'pyml-refs.json';

async function recordPulledRef(layout: string, ref: string): Promise<void> {
  const file = join(layout, PULLED_REFS_FILE);
  const temp = `${file}.${process.pid}.tmp`;
  try {
    const refs = await readFile(file, 'utf8').then((t) => (JSON.parse(t) as { refs?: string[] }).refs ?? [], () => [] as string[]);
    if (refs.includes(ref)) return;
    await writeFile(temp, `${JSON.stringify({ refs: [...refs, ref] })}\n`);
    await rename(temp, file);
  } catch {
    // Only `pyml images` reads it: a pull that could not note its name is still a good pull.
    await rm(temp, { force: true });
  }
}

/** Where pulled layouts and saved engine images live: `$PYML_CACHE_DIR/pulled`. */
export function pulledCacheDir(): string {
  return join(pymlCacheDir(), 'pulled');
}

/** The pulled dir, made if missing. */
async function cachePulledDir(): Promise<string> {
  const dir = pulledCacheDir();
  await mkdir(dir, { recursive: true });
  return dir;
}

function exists(path: string): Promise<boolean> {
  return stat(path).then(() => true, () => false);
}
