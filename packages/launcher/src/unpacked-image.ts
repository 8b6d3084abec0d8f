import { access, mkdir, readFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { type OpenedImage, markUsed, openImage, pymlCacheDir, unpack } from '@pyml/image';
import { MANIFEST_PATH, PYML_ROOT, parsePymlManifest, requirePymlManifest, type PymlManifest } from '@pyml/image/pyml-format';
import type { OciImageConfig } from '@pyml/image';

/** What serve knows of an image before running it. */
export interface ImageInfo {
  ref: string;
  manifestDigest: string;
  /** The config blob's digest: the image ID a Docker engine gives it once loaded. */
  configDigest: string;
  manifest: PymlManifest;
  config: NonNullable<OciImageConfig['config']>;
}

/** An image's filesystem on this machine, unpacked once per manifest digest and shared by every run of it. */
export interface UnpackedImage extends ImageInfo {
  /** The merged filesystem: `<rootfs>/opt/pyml/pyml.json` etc. */
  rootfs: string;
  /** `<rootfs>/opt/pyml`, what the entrypoint knows as PYML_ROOT. */
  pymlRoot: string;
}

export interface UnpackImageOptions {
  /** Where unpacked trees live (default `$PYML_CACHE_DIR/rootfs`, else `~/.cache/pyml/rootfs`). */
  cacheDir?: string;
  onProgress?: (bytesDone: number) => void;
}

export function defaultRootfsCache(): string {
  return join(pymlCacheDir(), 'rootfs');
}

/** pyml.json from an unpacked copy when there is one (reading it from the layers means decompressing them). */
async function manifestOf(source: OpenedImage, cacheDir = defaultRootfsCache()): Promise<PymlManifest> {
  const unpacked = join(rootfsDir(cacheDir, source.manifestDigest), MANIFEST_PATH);
  const bytes = await readFile(unpacked).catch(() => undefined);
  const where = `image ${source.ref}`;
  return bytes ? parsePymlManifest(bytes, where) : requirePymlManifest(source, where);
}

/** The directory name has no ':' because it goes into colon-separated library paths. */
function rootfsDir(cacheDir: string, manifestDigest: string): string {
  // Absolute: the image's loader is run from here with another working directory.
  return join(resolve(cacheDir), manifestDigest.replace(':', '-'));
}

/** Files shared by the unpacked trees of one cache (SharedFiles); the name cannot clash with a digest's. */
export function sharedFilesDir(cacheDir: string): string {
  return join(resolve(cacheDir), 'files');
}

/** Opens REF and reads its pyml.json and config, without unpacking anything. */
export async function readImageInfo(ref: string): Promise<ImageInfo> {
  const source = await openImage(ref);
  try {
    return { ref, manifestDigest: source.manifestDigest, configDigest: source.manifest.config.digest, manifest: await manifestOf(source), config: source.config.config ?? {} };
  } finally {
    await source.close();
  }
}

/**
 * Opens REF (OCI layout dir or tarball) and unpacks it into `<cache>/<algo>-<hex>` unless that tree is already
 * there. `unpack` builds in a temp dir and renames, so a tree in the cache is always complete; two processes racing
 * on the same digest both end with the same tree. Regular files are hard links into the cache's shared store, so
 * images on the same base (every model, every version) hold its Node binary and libraries once.
 */
export async function unpackImage(ref: string, opts: UnpackImageOptions = {}): Promise<UnpackedImage> {
  const source = await openImage(ref);
  try {
    const cache = opts.cacheDir ?? defaultRootfsCache();
    const manifest = await manifestOf(source, cache);
    await mkdir(cache, { recursive: true });
    const rootfs = rootfsDir(cache, source.manifestDigest);
    const complete = () => access(join(rootfs, MANIFEST_PATH)).then(() => true, () => false);
    if (!(await complete())) {
      try {
        await unpack(source, rootfs, { onProgress: opts.onProgress, sharedFilesDir: sharedFilesDir(cache) });
      } catch (error) {
        // Another process may have renamed the same tree into place first.
        if (!(await complete())) throw error;
      }
    }
    await markUsed(rootfs);
    return {
      ref, manifestDigest: source.manifestDigest, configDigest: source.manifest.config.digest, rootfs, pymlRoot: join(rootfs, PYML_ROOT), manifest,
      config: source.config.config ?? {},
    };
  } finally {
    await source.close();
  }
}
