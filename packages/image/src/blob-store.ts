import { randomBytes, createHash } from 'node:crypto';
import { mkdir, readdir, readFile, rename, rm, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { pymlCacheDir } from './cache-dir.ts';
import { digestHex, isDigest, sha256Digest } from './digest.ts';
import type { Layer } from './layer.ts';

/**
 * A content-addressed store of blobs (`<dir>/blobs/sha256/<hex>`, the OCI layout's own shape, so blobs can be
 * hard-linked straight into a layout) plus an index of built layers by cache key (`<dir>/layers/`).
 * Every write goes to a temp file in `<dir>/tmp` and is renamed into place, so a reader never sees half a blob.
 */
export class BlobStore {
  readonly dir: string;

  constructor(dir?: string) {
    this.dir = pymlCacheDir(dir);
  }

  path(digest: string): string {
    return join(this.blobsDir, digestHex(digest));
  }

  async has(digest: string): Promise<boolean> {
    try {
      return (await stat(this.path(digest))).isFile();
    } catch {
      return false;
    }
  }

  async putBytes(bytes: Uint8Array | string): Promise<string> {
    const digest = sha256Digest(bytes);
    if (await this.has(digest)) return digest;
    const temp = await this.tempPath();
    try {
      await writeFile(temp, bytes);
      await this.commit(temp, digest);
    } catch (error) {
      await rm(temp, { force: true });
      throw error;
    }
    return digest;
  }

  /** A fresh path in the store's temp dir (same filesystem as the blobs, so `commit` is a rename). */
  async tempPath(): Promise<string> {
    const dir = join(this.dir, 'tmp');
    await mkdir(dir, { recursive: true });
    return join(dir, `${process.pid}-${randomBytes(8).toString('hex')}`);
  }

  /** Moves a finished temp file to its digest's place. The caller has hashed it while writing it. */
  async commit(tempFile: string, digest: string): Promise<void> {
    const target = this.path(digest);
    await mkdir(join(this.dir, 'blobs', 'sha256'), { recursive: true });
    await rename(tempFile, target);
  }

  async lookup(cacheKey: string): Promise<Layer | undefined> {
    let text: string;
    try {
      text = await readFile(this.indexPath(cacheKey), 'utf8');
    } catch {
      return undefined;
    }
    let layer: Layer;
    try {
      layer = JSON.parse(text) as Layer;
    } catch {
      return undefined; // a torn or foreign index entry is a miss, not an error
    }
    if (!isDigest(layer.digest) || !isDigest(layer.diffId)) return undefined;
    // The blob may have been pruned, or replaced by something of another size.
    try {
      const info = await stat(this.path(layer.digest));
      if (!info.isFile() || info.size !== layer.size) return undefined;
    } catch {
      return undefined;
    }
    return layer;
  }

  /** Where the blobs live, one file per digest (a prune lists them here). */
  get blobsDir(): string {
    return join(this.dir, 'blobs', 'sha256');
  }

  /** Drops layer index entries whose blob is gone (after a prune); returns how many. */
  async forgetMissingLayers(): Promise<number> {
    const dir = join(this.dir, 'layers');
    let dropped = 0;
    for (const name of await readdir(dir).catch(() => [] as string[])) {
      const file = join(dir, name);
      const layer = await readFile(file, 'utf8').then((t) => JSON.parse(t) as Partial<Layer>, () => undefined);
      if (layer?.digest && isDigest(layer.digest) && (await this.has(layer.digest))) continue;
      await rm(file, { force: true });
      dropped += 1;
    }
    return dropped;
  }

  async remember(cacheKey: string, layer: Layer): Promise<void> {
    const file = this.indexPath(cacheKey);
    await mkdir(join(this.dir, 'layers'), { recursive: true });
    const temp = await this.tempPath();
    const { reused: _reused, ...stored } = layer;
    await writeFile(temp, JSON.stringify(stored));
    await rename(temp, file);
  }

  private indexPath(cacheKey: string): string {
    // Keys can be long or contain any character; their hash is a safe file name.
    return join(this.dir, 'layers', createHash('sha256').update(cacheKey).digest('hex') + '.json');
  }
}
