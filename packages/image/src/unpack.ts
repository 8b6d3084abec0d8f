import { randomBytes } from 'node:crypto';
import { mkdir, readdir, realpath, rename, rm, rmdir } from 'node:fs/promises';
import { basename, dirname, join, resolve } from 'node:path';
import { pipeline, type Readable } from 'node:stream';
import tarStream from 'tar-stream';
import { ByteCounter } from './byte-counter.ts';
import type { Image } from './image.ts';
import { blobFailure } from './digest.ts';
import { uncompressedLayer } from './layer-stream.ts';
import { isLayerGzip } from './oci.ts';
import { SharedFiles, type RecordedEntry } from './shared-files.ts';
import { UnpackedBytesBudget, unpackLimitsFromEnv, type UnpackLimits } from './tar-entry-rules.ts';
import { applyDirectoryModes, checkSymlinksStayBeneath } from './tree-on-disk.ts';
import { applyEntry, storedSize, type LayerContext, type UnpackState } from './unpack-entry.ts';

export interface UnpackOptions {
  /** Uncompressed layer bytes applied so far (all layers), once per chunk. */
  onProgress?: (bytesDone: number) => void;
  /**
   * A directory where regular files are kept once by content and metadata and hard-linked into the tree (see
   * SharedFiles). It must be on the target's filesystem to save anything.
   */
  sharedFilesDir?: string;
  /** Size limits (default: DEFAULT_UNPACK_LIMITS as raised by PYML_MAX_UNPACKED_BYTES / PYML_MAX_LAYER_EXPANSION). */
  limits?: Partial<UnpackLimits>;
}

export interface UnpackResult {
  layers: number;
  /** Layers rebuilt from the shared store's record of an earlier unpack, their blobs not read. */
  layersFromStore: number;
  /** Files and directories whose setuid, setgid or sticky bit was dropped. */
  specialBitsStripped: number;
  /** Device nodes and FIFOs not created. */
  devicesSkipped: number;
}

/**
 * Unpacks an image's merged filesystem into `targetDir`: layers bottom to top, each blob checked against its
 * digest and diffId as it streams, OCI whiteouts honoured. The entries obey tar-entry-rules.ts whatever their
 * order: every path is resolved beneath the root (a symlink is never followed out), links must resolve beneath
 * it when made and once all layers are down (a hard link to a symlink included), whiteouts name one child of
 * their directory, modes and times are set through descriptors opened without following links, setuid, setgid
 * and sticky bits are dropped, devices are skipped, and a layer or image that unpacks to more than its limit
 * (a compression bomb) stops early. A refusal names the layer and entry. Work happens in a sibling temp dir
 * renamed into place at the end, so a failure leaves nothing at `targetDir`. Absolute symlink targets are
 * rewritten relative, so the tree never points at the host's files. Ownership is kept only when running as
 * root. With a shared store, a layer unpacked before (by its diffId, from any image) is rebuilt from the store's
 * record without reading its blob, under the same rules.
 */
export async function unpack(image: Image & { ref?: string }, targetDir: string, opts: UnpackOptions = {}): Promise<UnpackResult> {
  const target = resolve(targetDir);
  // An opened image is named by its ref, a built one by its digest.
  const source = { ...image, ref: image.ref ?? image.manifestDigest };
  const existing = await readdir(target).catch((error: NodeJS.ErrnoException) => {
    if (error.code === 'ENOENT') return undefined;
    throw new Error(`unpack ${source.ref} to ${target}: ${error.message}`);
  });
  if (existing !== undefined && existing.length > 0) throw new Error(`unpack ${source.ref}: target ${target} exists and is not empty`);
  let limits: UnpackLimits;
  try {
    limits = { ...unpackLimitsFromEnv(), ...opts.limits };
  } catch (error) {
    throw new Error(`unpack ${source.ref}: ${(error as Error).message}`);
  }
  await mkdir(dirname(target), { recursive: true });
  try {
    return await unpackOnce(source, target, existing !== undefined, opts, limits, true);
  } catch (error) {
    // A record whose stored files went (a prune between the check and the link): the blobs still say it all.
    if (!(error instanceof StaleLayerRecord)) throw error;
    return unpackOnce(source, target, existing !== undefined, opts, limits, false);
  }
}

/** A layer record that could not be replayed. */
class StaleLayerRecord extends Error {}

async function unpackOnce(
  source: Image & { ref: string }, target: string, targetExists: boolean, opts: UnpackOptions, limits: UnpackLimits, useRecords: boolean,
): Promise<UnpackResult> {
  const temp = join(dirname(target), `.${basename(target)}.unpack-${randomBytes(6).toString('hex')}`);
  await mkdir(temp, { mode: 0o755 });
  let replaying = false;
  try {
    const state: UnpackState = {
      root: await realpath(temp), isRoot: process.getuid?.() === 0, dirModes: new Map(), symlinks: new Map(),
      sharedFiles: opts.sharedFilesDir === undefined ? undefined : new SharedFiles(opts.sharedFilesDir),
      specialBitsStripped: 0, devicesSkipped: 0,
    };
    const budget = new UnpackedBytesBudget(limits);
    let done = 0;
    let layersFromStore = 0;
    for (const layer of source.layers) {
      const count = budget.layer(layer.digest, layer.size, isLayerGzip(layer.mediaType));
      const recorded = useRecords ? await state.sharedFiles?.recordedLayer(layer.diffId) : undefined;
      if (recorded) {
        replaying = true;
        await replayLayer(recorded, { state, layer: layer.digest, written: new Set() }, count);
        replaying = false;
        layersFromStore += 1;
        continue;
      }
      const blob = await layer.openBlob();
      const tar = uncompressedLayer(blob, layer, layer.diffId, `layer ${layer.digest}`);
      let streamError: Error | undefined;
      const counted = tar.pipe(new ByteCounter((n) => {
        count(n);
        opts.onProgress?.((done += n));
      }, (error) => {
        streamError ??= error;
        tar.destroy(); // stop decompressing now: the rest of a bomb is never inflated
      }));
      tar.on('error', (error) => counted.destroy((streamError ??= error)));
      const ctx: LayerContext = { state, layer: layer.digest, written: new Set(), record: state.sharedFiles ? [] : undefined };
      try {
        await applyLayer(counted, ctx, () => streamError);
      } catch (error) {
        // A tar or gzip error in a blob that fails its digest is the digest failure; anything else, say which layer.
        const message = (error as Error).message;
        if (message.startsWith('layer ') || message.startsWith('image ')) throw error;
        throw (await blobFailure(() => layer.openBlob())) ?? new Error(`layer ${layer.digest}: ${message}`);
      }
      // Recorded only once the whole blob streamed and matched its digest and diffId.
      if (state.sharedFiles && ctx.record) await state.sharedFiles.recordLayer(layer.diffId, ctx.record);
    }
    await checkSymlinksStayBeneath(state.root, state.symlinks);
    await applyDirectoryModes(state.root, state.dirModes);
    if (targetExists) await rmdir(target);
    await rename(temp, target);
    return { layers: source.layers.length, layersFromStore, specialBitsStripped: state.specialBitsStripped, devicesSkipped: state.devicesSkipped };
  } catch (error) {
    await rm(temp, { recursive: true, force: true });
    const message = (error as Error).message;
    if (replaying) throw new StaleLayerRecord(message);
    throw new Error(`unpack ${source.ref}: ${message}`);
  }
}

async function applyLayer(tar: Readable, ctx: LayerContext, streamError: () => Error | undefined): Promise<void> {
  const extract = tarStream.extract();
  const finished = new Promise<void>((ok, fail) => pipeline(tar, extract, (error) => (error ? fail(error) : ok())));
  finished.catch(() => {});
  try {
    for await (const entry of extract) {
      try {
        await applyEntry(entry.header, entry, ctx);
      } catch (error) {
        const cause = streamError();
        if (cause) throw cause;
        throw new Error(`layer ${ctx.layer}: entry ${JSON.stringify(entry.header.name)}: ${(error as Error).message}`);
      }
      entry.resume();
    }
  } catch (error) {
    extract.destroy();
    throw streamError() ?? error;
  }
  await finished.catch((error) => {
    throw streamError() ?? error;
  });
}

/** Applies a layer's recorded entries in their order, files linked from the store, under the same rules and limits. */
async function replayLayer(entries: RecordedEntry[], ctx: LayerContext, count: (n: number) => void): Promise<void> {
  for (const entry of entries) {
    const header = {
      name: entry.name, type: entry.type as tarStream.Header['type'], mode: entry.mode, uid: entry.uid, gid: entry.gid, mtime: new Date(entry.mtime), linkname: entry.linkname,
    } as tarStream.Header;
    const isFile = entry.type === 'file' || entry.type === 'contiguous-file';
    try {
      if (isFile && entry.stored !== undefined) count(await storedSize(ctx.state.sharedFiles!, entry.stored));
      await applyEntry(header, isFile ? { stored: entry.stored ?? '' } : noBytes(), ctx);
    } catch (error) {
      // Refused here, the record is passed over and the blob read: it then fails (or passes) on its own bytes.
      throw new Error(`layer ${ctx.layer} (from the shared store): entry ${JSON.stringify(entry.name)}: ${(error as Error).message}`);
    }
  }
}

async function* noBytes(): AsyncIterable<unknown> {}
