import { randomBytes, createHash } from 'node:crypto';
import { copyFile, type FileHandle, link, mkdir, open, readdir, readFile, rename, rm, stat, writeFile } from 'node:fs/promises';
import { pipeline } from 'node:stream/promises';
import { join } from 'node:path';
import { pymlCacheDir } from './cache-dir.ts';
import { removeDeadRunsLeftovers } from './dead-runs-leftovers.ts';
import { digestHex, isDigest, sha256Digest } from './digest.ts';
import { layerRecord, type LayerRecord } from './layer.ts';

export interface BlobStoreOptions {
  /**
   * Keep every blob this store finds or writes open until `release()`. A build does: `pyml cache prune --blobs`
   * sees the open files (it reads /proc) and keeps those blobs, and a blob removed anyway (a prune that looked
   * before the build opened it) is put back from the open file when the image is written (`ensure`).
   */
  hold?: boolean;
}

/**
 * A content-addressed store of blobs (`<dir>/blobs/sha256/<hex>`, the OCI layout's own shape, so blobs can be
 * hard-linked straight into a layout) plus an index of built layers by cache key (`<dir>/layers/`).
 * Every write goes to a temp file in `<dir>/tmp` and is renamed into place, so a reader never sees half a blob.
 */
export class BlobStore {
  readonly dir: string;
  private readonly held = new Map<string, FileHandle>();

  constructor(dir?: string, private readonly options: BlobStoreOptions = {}) {
    this.dir = pymlCacheDir(dir);
  }

  path(digest: string): string {
    return join(this.blobsDir, digestHex(digest));
  }

  async has(digest: string): Promise<boolean> {
    try {
      if (!(await stat(this.path(digest))).isFile()) return false;
    } catch {
      return false;
    }
    return this.hold(digest);
  }

  /**
   * Whether the blob is in place, putting it back first if it was removed since this store found it (a held blob:
   * its open file still has every byte). Writers call it just before they link or read a blob.
   */
  async ensure(digest: string): Promise<boolean> {
    if (await this.has(digest)) return true;
    const handle = this.held.get(digest);
    if (!handle) return false;
    const temp = await this.tempPath();
    try {
      await pipeline(handle.createReadStream({ start: 0, autoClose: false }), (await open(temp, 'w')).createWriteStream());
      await this.commit(temp, digest);
    } catch (error) {
      await rm(temp, { force: true });
      throw new Error(`blob ${digest} was removed from the store while in use, and putting it back failed: ${(error as Error).message}`);
    }
    return true;
  }

  /**
   * Puts the blob at `to`: a hard link (a copy across filesystems). A held blob removed meanwhile is put back first,
   * and once more should a prune remove it between the check and the link.
   */
  async linkInto(digest: string, to: string): Promise<void> {
    for (let attempt = 0; ; attempt++) {
      if (!(await this.ensure(digest))) throw new Error(`blob ${digest} is not in the blob store ${this.dir}`);
      try {
        await link(this.path(digest), to);
        return;
      } catch (error) {
        if ((error as NodeJS.ErrnoException).code !== 'ENOENT') {
          await copyFile(this.path(digest), to); // another filesystem, or the link limit
          return;
        }
        if (attempt > 0) throw error;
      }
    }
  }


  /** Closes the blobs this store holds open (see BlobStoreOptions.hold). */
  async release(): Promise<void> {
    const handles = [...this.held.values()];
    this.held.clear();
    await Promise.all(handles.map((h) => h.close().catch(() => {})));
  }

  /** Opens the blob if this store holds what it uses; false when it is gone (the caller treats that as a miss). */
  private async hold(digest: string): Promise<boolean> {
    if (!this.options.hold || this.held.has(digest)) return true;
    const handle = await open(this.path(digest), 'r').catch(() => undefined);
    if (!handle) return false;
    this.held.set(digest, handle);
    return true;
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

  /**
   * Removes what builds that were stopped (Ctrl-C, kill -9) left half-written in the temp dir: a layer blob each, as
   * big as the weights. Names start with the writer's pid, so a live build's files stay.
   */
  sweepDeadTemps(): Promise<void> {
    return removeDeadRunsLeftovers(join(this.dir, 'tmp'), '');
  }

  /** A fresh path in the store's temp dir (same filesystem as the blobs, so `commit` is a rename), named by our pid. */
  async tempPath(): Promise<string> {
    const dir = join(this.dir, 'tmp');
    await mkdir(dir, { recursive: true });
    return join(dir, `${process.pid}-${randomBytes(8).toString('hex')}`);
  }

  /** Moves a finished temp file to its digest's place. The caller has hashed it while writing it. */
  async commit(tempFile: string, digest: string): Promise<void> {
    const target = this.path(digest);
    await mkdir(join(this.dir, 'blobs', 'sha256'), { recursive: true });
    // Opened before the rename, so the store holds the very file it puts in place (a prune cannot come between).
    const handle = this.options.hold && !this.held.has(digest) ? await open(tempFile, 'r') : undefined;
    try {
      await rename(tempFile, target);
    } catch (error) {
      await handle?.close();
      throw error;
    }
    if (handle) this.held.set(digest, handle);
  }

  async lookup(cacheKey: string): Promise<LayerRecord | undefined> {
    let text: string;
    try {
      text = await readFile(this.indexPath(cacheKey), 'utf8');
    } catch {
      return undefined;
    }
    let layer: LayerRecord;
    try {
      layer = JSON.parse(text) as LayerRecord;
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
    return (await this.hold(layer.digest)) ? layer : undefined;
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
      const layer = await readFile(file, 'utf8').then((t) => JSON.parse(t) as Partial<LayerRecord>, () => undefined);
      if (layer?.digest && isDigest(layer.digest) && (await this.has(layer.digest))) continue;
      await rm(file, { force: true });
      dropped += 1;
    }
    return dropped;
  }

  async remember(cacheKey: string, layer: LayerRecord): Promise<void> {
    const file = this.indexPath(cacheKey);
    await mkdir(join(this.dir, 'layers'), { recursive: true });
    const temp = await this.tempPath();
    await writeFile(temp, JSON.stringify(layerRecord(layer)));
    await rename(temp, file);
  }

  private indexPath(cacheKey: string): string {
    // Keys can be long or contain any character; their hash is a safe file name.
    return join(this.dir, 'layers', createHash('sha256').update(cacheKey).digest('hex') + '.json');
  }
}
