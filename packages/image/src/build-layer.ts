import { open, rm } from 'node:fs/promises';
import { pipeline } from 'node:stream/promises';
import tarStream from 'tar-stream';
import type { BlobStore } from './blob-store.ts';
import { sourceDateEpochFromEnv } from './pyml-format/source-date-epoch.ts';
import { estimateCompression } from './compression-choice.ts';
import { createDeterministicGzip, GzipHeaderPin } from './deterministic-gzip.ts';
import { HashingStream } from './digest.ts';
import { planEntries, type FileEntry, type PlannedEntry } from './file-entry.ts';
import { deriveLayerCacheKey } from './layer-cache-key.ts';
import { addTarEntry, addTarFileEntry, packChunks, type TarHeader } from './tar-writing.ts';
import type { Layer, LayerRecord } from './layer.ts';
import { MEDIA_TYPE_LAYER_TAR, MEDIA_TYPE_LAYER_TAR_GZIP } from './oci.ts';
import { storedLayer } from './stored-layer.ts';

export type LayerMediaType = typeof MEDIA_TYPE_LAYER_TAR | typeof MEDIA_TYPE_LAYER_TAR_GZIP;

/** A layer buildLayer made or found in its store's cache. */
export interface BuiltLayer extends Layer {
  mediaType: LayerMediaType;
  /** True when the layer came from the store's cache without reading its sources. */
  reused: boolean;
}

export interface BuildLayerOptions {
  store: BlobStore;
  /** 'auto' (default) stores the tar uncompressed when gzip would save less than about 10%. */
  compression?: 'auto' | 'gzip' | 'none';
  /** Names this layer's inputs; when the store remembers it, sources are not read. Default: derived from stats. */
  cacheKey?: string;
  annotations?: Record<string, string>;
  /** Seconds since the epoch for every mtime. Default: $SOURCE_DATE_EPOCH, else 0. */
  sourceDateEpoch?: number;
  /** Uncompressed tar bytes written so far, once per chunk. */
  onProgress?: (bytesDone: number) => void;
}

export function defaultSourceDateEpoch(): number {
  return sourceDateEpochFromEnv();
}

/**
 * Builds one reproducible layer in a single pass: tar → sha256 (diffId) → [gzip → sha256 (digest)] → temp file
 * in the store, renamed to its digest. Each byte is read once and hashed once per form.
 */
export async function buildLayer(entries: FileEntry[], opts: BuildLayerOptions): Promise<BuiltLayer> {
  const { store } = opts;
  const requested = opts.compression ?? 'auto';
  const epoch = opts.sourceDateEpoch ?? defaultSourceDateEpoch();
  const annotations = { ...(opts.annotations ?? {}) };

  if (opts.cacheKey !== undefined) {
    const cached = await store.lookup(opts.cacheKey);
    if (cached) return built({ ...cached, annotations }, store, true);
  }
  const planned = await planEntries(entries);
  const cacheKey = opts.cacheKey ?? deriveLayerCacheKey(planned, requested, epoch);
  if (opts.cacheKey === undefined) {
    const cached = await store.lookup(cacheKey);
    if (cached) return built({ ...cached, annotations }, store, true);
  }

  const compression = requested === 'auto' ? (await estimateCompression(planned)).compression : requested;
  const layer = await writeLayerBlob(planned, { store, compression, epoch, annotations, onProgress: opts.onProgress });
  await store.remember(cacheKey, layer);
  return built(layer, store, false);
}

function built(record: LayerRecord, store: BlobStore, reused: boolean): BuiltLayer {
  return { ...storedLayer(record, store), mediaType: record.mediaType as LayerMediaType, reused };
}

async function writeLayerBlob(
  planned: PlannedEntry[],
  o: { store: BlobStore; compression: 'gzip' | 'none'; epoch: number; annotations: Record<string, string>; onProgress?: (n: number) => void },
): Promise<LayerRecord> {
  const pack = tarStream.pack();
  const tarHash = new HashingStream(o.onProgress);
  const blobHash = o.compression === 'gzip' ? new HashingStream() : tarHash;
  const temp = await o.store.tempPath();
  const stages: NodeJS.ReadWriteStream[] =
    o.compression === 'gzip' ? [tarHash, createDeterministicGzip(), new GzipHeaderPin(), blobHash] : [tarHash];
  // Opened before the pipeline runs: a file that createWriteStream opened late could appear after a failure's rm.
  const sink = (await open(temp, 'w')).createWriteStream();
  try {
    await Promise.all([
      writeEntries(pack, planned, o.epoch),
      pipeline(packChunks(pack), ...(stages as [NodeJS.ReadWriteStream]), sink),
    ]);
    const digest = blobHash.digest();
    const size = blobHash.bytes;
    await o.store.commit(temp, digest);
    return {
      mediaType: o.compression === 'gzip' ? MEDIA_TYPE_LAYER_TAR_GZIP : MEDIA_TYPE_LAYER_TAR,
      digest,
      diffId: tarHash.digest(),
      size,
      annotations: o.annotations,
    };
  } catch (error) {
    pack.destroy(error as Error);
    await rm(temp, { force: true });
    throw error;
  }
}

async function writeEntries(pack: tarStream.Pack, planned: PlannedEntry[], epoch: number): Promise<void> {
  const mtime = new Date(epoch * 1000);
  for (const entry of planned) {
    // uid/gid 0 and empty user/group names: ownership must not depend on who built the image.
    const header: TarHeader = { name: entry.name, mode: entry.mode, mtime, uid: 0, gid: 0, uname: '', gname: '' };
    if (entry.kind === 'directory') {
      await addTarEntry(pack, { ...header, type: 'directory' });
    } else if (entry.kind === 'symlink') {
      await addTarEntry(pack, { ...header, type: 'symlink', linkname: entry.linkTarget });
    } else if ('content' in entry) {
      await addTarEntry(pack, { ...header, type: 'file' }, entry.content);
    } else {
      try {
        await addTarFileEntry(pack, { ...header, type: 'file', size: entry.size }, entry.realSource);
      } catch (error) {
        throw new Error(`layer entry ${entry.imagePath}: ${(error as Error).message}`);
      }
    }
  }
  pack.finalize();
}
