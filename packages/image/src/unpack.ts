import { createHash, randomBytes } from 'node:crypto';
import { chmod, lchown, link, lstat, mkdir, open, readdir, realpath, rename, rm, rmdir, symlink, utimes } from 'node:fs/promises';
import { basename, dirname, join, posix, resolve, sep } from 'node:path';
import { pipeline, Transform, type Readable, type TransformCallback } from 'node:stream';
import { finished as streamFinished } from 'node:stream/promises';
import { once } from 'node:events';
import tarStream from 'tar-stream';
import type { ImageSource } from './image-source.ts';
import { blobFailure } from './digest.ts';
import { uncompressedLayer } from './layer-stream.ts';
import { SharedFiles, type RecordedEntry } from './shared-files.ts';

export interface UnpackOptions {
  /** Uncompressed layer bytes applied so far (all layers), once per chunk. */
  onProgress?: (bytesDone: number) => void;
  /**
   * A directory where regular files are kept once by content and metadata and hard-linked into the tree (see
   * SharedFiles). It must be on the target's filesystem to save anything.
   */
  sharedFilesDir?: string;
}

export interface UnpackResult {
  layers: number;
  /** Layers rebuilt from the shared store's record of an earlier unpack, their blobs not read. */
  layersFromStore: number;
}

/** What one layer's application needs to know. */
interface LayerContext {
  root: string;
  layer: string;
  isRoot: boolean;
  /** Final modes of directories, applied last so a read-only directory can still be filled. */
  dirModes: Map<string, number>;
  /** Paths this layer wrote: whiteouts in the same layer must not remove them. */
  written: Set<string>;
  /** Every symlink written, checked once all layers are down (a later layer can change where one leads). */
  symlinks: { hostPath: string; layer: string; entry: string }[];
  /** The layer stream's own failure (digest mismatch, corrupt gzip), the real cause of any entry error. */
  streamError: () => Error | undefined;
  sharedFiles?: SharedFiles;
  /** The entries applied so far, for the shared store's record of this layer (absent when not recording). */
  record?: RecordedEntry[];
}

/** A tar entry's bytes: streaming from its layer, or a stored copy when the layer is replayed from its record. */
type EntryBody = AsyncIterable<unknown> | { stored: string };

/**
 * Unpacks an image's merged filesystem into `targetDir`: layers bottom to top, each blob checked against its
 * digest and diffId as it streams, OCI whiteouts honoured. Entries that would write outside the target
 * (absolute paths, `..`, links leading out, writes through such links) are refused with an error naming the
 * layer and entry. Work happens in a sibling temp dir renamed into place at the end, so a failure leaves
 * nothing at `targetDir`. Absolute symlink targets are rewritten relative, so the tree never points at the
 * host's files. Device nodes are skipped; ownership is kept only when running as root. With a shared store, a
 * layer unpacked before (by its diffId, from any image) is rebuilt from the store's record without reading its blob.
 */
export async function unpack(source: ImageSource, targetDir: string, opts: UnpackOptions = {}): Promise<UnpackResult> {
  const target = resolve(targetDir);
  const existing = await readdir(target).catch((error: NodeJS.ErrnoException) => {
    if (error.code === 'ENOENT') return undefined;
    throw new Error(`unpack ${source.ref} to ${target}: ${error.message}`);
  });
  if (existing !== undefined && existing.length > 0) throw new Error(`unpack ${source.ref}: target ${target} exists and is not empty`);
  await mkdir(dirname(target), { recursive: true });
  try {
    return await unpackOnce(source, target, existing !== undefined, opts, true);
  } catch (error) {
    // A record whose stored files went (a prune between the check and the link): the blobs still say it all.
    if (!(error instanceof StaleLayerRecord)) throw error;
    return unpackOnce(source, target, existing !== undefined, opts, false);
  }
}

/** A layer record that could not be replayed. */
class StaleLayerRecord extends Error {}

async function unpackOnce(source: ImageSource, target: string, targetExists: boolean, opts: UnpackOptions, useRecords: boolean): Promise<UnpackResult> {
  const temp = join(dirname(target), `.${basename(target)}.unpack-${randomBytes(6).toString('hex')}`);
  await mkdir(temp, { mode: 0o755 });
  let replaying = false;
  try {
    const root = await realpath(temp);
    const dirModes = new Map<string, number>();
    const symlinks: LayerContext['symlinks'] = [];
    let done = 0;
    const diffIds = source.config.rootfs.diff_ids;
    const sharedFiles = opts.sharedFilesDir === undefined ? undefined : new SharedFiles(opts.sharedFilesDir);
    let layersFromStore = 0;
    for (const [i, descriptor] of source.layers.entries()) {
      const isRoot = process.getuid?.() === 0;
      const recorded = useRecords ? await sharedFiles?.recordedLayer(diffIds[i]) : undefined;
      if (recorded) {
        replaying = true;
        await replayLayer(recorded, { root, layer: descriptor.digest, isRoot, dirModes, written: new Set(), symlinks, streamError: () => undefined, sharedFiles });
        replaying = false;
        layersFromStore += 1;
        continue;
      }
      const blob = (await source.openBlob(descriptor.digest)) as Readable;
      const tar = uncompressedLayer(blob, descriptor, diffIds[i], `layer ${descriptor.digest}`);
      const counted = tar.pipe(new ProgressCounter((n) => opts.onProgress?.((done += n))));
      let streamError: Error | undefined;
      tar.on('error', (error) => counted.destroy((streamError = error)));
      const ctx: LayerContext = {
        root, layer: descriptor.digest, isRoot, dirModes, written: new Set(), symlinks, streamError: () => streamError, sharedFiles, record: sharedFiles ? [] : undefined,
      };
      try {
        await applyLayer(counted, ctx);
      } catch (error) {
        // A tar or gzip error in a blob that fails its digest is the digest failure; anything else, say which layer.
        const message = (error as Error).message;
        if (message.startsWith('layer ') || message.startsWith('image ')) throw error;
        throw (await blobFailure(() => source.openBlob(descriptor.digest))) ?? new Error(`layer ${descriptor.digest}: ${message}`);
      }
      // Recorded only once the whole blob streamed and matched its digest and diffId.
      if (sharedFiles && ctx.record) await sharedFiles.recordLayer(diffIds[i], ctx.record);
    }
    await checkSymlinks(root, symlinks);
    // Deepest first, so restricting a parent does not stop us from chmod-ing its children.
    for (const [dir, mode] of [...dirModes].sort((a, b) => b[0].length - a[0].length)) await chmod(dir, mode);
    if (targetExists) await rmdir(target);
    await rename(temp, target);
    return { layers: source.layers.length, layersFromStore };
  } catch (error) {
    await rm(temp, { recursive: true, force: true });
    const message = (error as Error).message;
    if (replaying) throw new StaleLayerRecord(message);
    throw new Error(`unpack ${source.ref}: ${message}`);
  }
}

class ProgressCounter extends Transform {
  constructor(private readonly report: (n: number) => void) {
    super();
  }

  override _transform(chunk: Buffer, _encoding: BufferEncoding, callback: TransformCallback): void {
    this.report(chunk.length);
    callback(null, chunk);
  }
}

async function applyLayer(tar: Readable, ctx: LayerContext): Promise<void> {
  const extract = tarStream.extract();
  const finished = new Promise<void>((ok, fail) => pipeline(tar, extract, (error) => (error ? fail(error) : ok())));
  finished.catch(() => {});
  try {
    for await (const entry of extract) {
      try {
        await applyEntry(entry.header, entry, ctx);
      } catch (error) {
        const cause = ctx.streamError();
        if (cause) throw cause;
        throw new Error(`layer ${ctx.layer}: entry ${JSON.stringify(entry.header.name)}: ${(error as Error).message}`);
      }
      entry.resume();
    }
  } catch (error) {
    extract.destroy();
    throw ctx.streamError() ?? error;
  }
  await finished;
}

/** Applies a layer's recorded entries in their order, files linked from the store. */
async function replayLayer(entries: RecordedEntry[], ctx: LayerContext): Promise<void> {
  for (const entry of entries) {
    const header = {
      name: entry.name, type: entry.type as tarStream.Header['type'], mode: entry.mode, uid: entry.uid, gid: entry.gid, mtime: new Date(entry.mtime), linkname: entry.linkname,
    } as tarStream.Header;
    try {
      await applyEntry(header, entry.type === 'file' || entry.type === 'contiguous-file' ? { stored: entry.stored ?? '' } : noBytes(), ctx);
    } catch (error) {
      throw new Error(`layer ${ctx.layer} (from the shared store): entry ${JSON.stringify(entry.name)}: ${(error as Error).message}`);
    }
  }
}

async function* noBytes(): AsyncIterable<unknown> {}

/** The entry's path relative to the root, or an error for absolute paths and `..`. */
function entryPath(name: string): string {
  if (name.startsWith('/')) throw new Error('absolute path refused');
  const parts = name.split('/').filter((p) => p !== '' && p !== '.');
  if (parts.includes('..')) throw new Error('path with ".." refused');
  if (parts.some((p) => p.includes('\0'))) throw new Error('path with a NUL byte refused');
  return parts.join('/');
}

function within(root: string, hostPath: string): boolean {
  return hostPath === root || hostPath.startsWith(root + sep);
}

async function lstatOrUndefined(path: string) {
  return lstat(path).catch((error: NodeJS.ErrnoException) => {
    if (error.code === 'ENOENT') return undefined;
    throw error;
  });
}

/**
 * The host directory for `relDir`, created as needed. Each existing component is resolved with realpath and
 * must stay inside the root, so no entry is ever written through a link that leads out.
 */
async function safeDirectory(root: string, relDir: string, create: boolean): Promise<string> {
  let current = root;
  if (relDir === '') return root;
  for (const part of relDir.split('/')) {
    const next = join(current, part);
    const info = await lstatOrUndefined(next);
    if (info === undefined) {
      if (!create) throw new Error(`${relDir} does not exist`);
      await mkdir(next, { mode: 0o755 });
      current = next;
      continue;
    }
    if (info.isSymbolicLink()) {
      const real = await realpath(next).catch(() => undefined);
      if (real === undefined || !within(root, real)) {
        throw new Error(`refused to write through symlink /${posix.relative(root, next)}: its target is missing or outside the target directory`);
      }
      if (!(await lstat(real)).isDirectory()) throw new Error(`/${posix.relative(root, next)} is not a directory`);
      current = real;
      continue;
    }
    if (!info.isDirectory()) {
      if (!create) throw new Error(`/${posix.relative(root, next)} is not a directory`);
      // A lower layer's file where this layer has a directory: the upper layer wins.
      await rm(next, { force: true });
      await mkdir(next, { mode: 0o755 });
    }
    current = next;
  }
  return current;
}

async function applyEntry(header: tarStream.Header, body: EntryBody, ctx: LayerContext): Promise<void> {
  const rel = entryPath(header.name);
  if (rel === '') return; // the root directory itself
  const base = posix.basename(rel);
  const relParent = posix.dirname(rel) === '.' ? '' : posix.dirname(rel);
  const recorded: RecordedEntry = {
    name: header.name, type: header.type ?? 'file', mode: header.mode ?? 0o644, uid: header.uid ?? 0, gid: header.gid ?? 0, mtime: header.mtime?.getTime() ?? 0,
    ...(header.linkname ? { linkname: header.linkname } : {}),
  };
  ctx.record?.push(recorded);

  if (base.startsWith('.wh.')) return applyWhiteout(ctx, relParent, base);

  const parent = await safeDirectory(ctx.root, relParent, true);
  const hostPath = join(parent, base);
  const existing = await lstatOrUndefined(hostPath);
  const mode = header.mode & 0o7777;
  ctx.written.add(rel);

  switch (header.type) {
    case 'directory': {
      if (existing && !existing.isDirectory()) await rm(hostPath, { recursive: true, force: true });
      if (!existing || !existing.isDirectory()) await mkdir(hostPath, { mode: 0o755 });
      ctx.dirModes.set(hostPath, mode);
      await own(hostPath, header, ctx);
      return;
    }
    case 'file':
    case 'contiguous-file': {
      if (existing) await rm(hostPath, { recursive: true, force: true });
      if ('stored' in body) {
        if (!ctx.sharedFiles) throw new Error('a stored file without a shared store');
        return ctx.sharedFiles.linkStored(body.stored, hostPath);
      }
      if (ctx.sharedFiles) {
        recorded.stored = await writeSharedFile(header, body, hostPath, ctx.sharedFiles, ctx);
        // A file the store could not take cannot be replayed: this layer is not recorded.
        if (recorded.stored === undefined) ctx.record = undefined;
        return;
      }
      await writeEntryFile(body, hostPath);
      await setFileMetadata(hostPath, header, ctx);
      return;
    }
    case 'symlink': {
      const linkTarget = symlinkTarget(rel, header.linkname);
      if (existing) await rm(hostPath, { recursive: true, force: true });
      await symlink(linkTarget, hostPath);
      ctx.symlinks.push({ hostPath, layer: ctx.layer, entry: header.name });
      await own(hostPath, header, ctx);
      return;
    }
    case 'link': {
      const targetRel = entryPath(header.linkname ?? '');
      if (targetRel === '') throw new Error('hard link to the root refused');
      const targetParent = await safeDirectory(ctx.root, posix.dirname(targetRel) === '.' ? '' : posix.dirname(targetRel), false);
      const targetHost = join(targetParent, posix.basename(targetRel));
      const info = await lstatOrUndefined(targetHost);
      if (!info) throw new Error(`hard link target ${header.linkname} does not exist`);
      if (info.isDirectory()) throw new Error(`hard link to directory ${header.linkname} refused`);
      if (existing) await rm(hostPath, { recursive: true, force: true });
      await link(targetHost, hostPath);
      return;
    }
    default:
      return; // devices, FIFOs: not part of a model's filesystem, and need privileges to create
  }
}

/**
 * A symlink's target as it will be written. Absolute targets are made relative to the link (so, unpacked
 * without a chroot, they still point inside the tree); relative ones must not climb above the root.
 */
function symlinkTarget(rel: string, linkname: string | null | undefined): string {
  if (!linkname) throw new Error('symlink without a target');
  if (linkname.includes('\0')) throw new Error('symlink target with a NUL byte refused');
  const linkDir = posix.dirname('/' + rel);
  if (linkname.startsWith('/')) return posix.relative(linkDir, posix.normalize(linkname)) || '.';
  // Resolved from a relative base, so ".." past the root shows (an absolute base would clamp it).
  const resolved = posix.normalize(posix.join(posix.dirname(rel), linkname));
  if (resolved === '..' || resolved.startsWith('../')) {
    throw new Error(`symlink to ${linkname} refused: it leads outside the target`);
  }
  return linkname;
}

async function applyWhiteout(ctx: LayerContext, relParent: string, base: string): Promise<void> {
  const parent = await safeDirectory(ctx.root, relParent, true);
  if (base === '.wh..wh..opq') {
    // Opaque directory: hide everything lower layers put here, keep what this layer wrote.
    const prefix = relParent === '' ? '' : relParent + '/';
    for (const child of await readdir(parent)) {
      const childRel = prefix + child;
      const keptByThisLayer = [...ctx.written].some((w) => w === childRel || w.startsWith(childRel + '/'));
      if (!keptByThisLayer) await rm(join(parent, child), { recursive: true, force: true });
    }
    return;
  }
  if (base.startsWith('.wh..wh.')) return; // other AUFS metadata, not a whiteout
  const hiddenRel = posix.join(relParent, base.slice('.wh.'.length));
  if (ctx.written.has(hiddenRel)) return;
  await rm(join(parent, base.slice('.wh.'.length)), { recursive: true, force: true });
}

async function own(hostPath: string, header: tarStream.Header, ctx: LayerContext): Promise<void> {
  if (ctx.isRoot) await lchown(hostPath, header.uid ?? 0, header.gid ?? 0);
}

async function setFileMetadata(hostPath: string, header: tarStream.Header, ctx: LayerContext): Promise<void> {
  await own(hostPath, header, ctx); // before chmod: chown clears setuid/setgid bits
  await chmod(hostPath, header.mode & 0o7777);
  await utimes(hostPath, header.mtime, header.mtime);
}

/**
 * Writes the entry into the shared store's directory, hashing as it goes, then links it in at `hostPath`. Returns
 * the stored copy's name (undefined when the store could not take it).
 */
async function writeSharedFile(header: tarStream.Header, body: AsyncIterable<unknown>, hostPath: string, files: SharedFiles, ctx: LayerContext): Promise<string | undefined> {
  const temp = await files.tempPath();
  try {
    const sha256 = await writeEntryFile(body, temp);
    await setFileMetadata(temp, header, ctx);
    const owned = ctx.isRoot ? { uid: header.uid ?? 0, gid: header.gid ?? 0 } : { uid: process.getuid?.() ?? 0, gid: process.getgid?.() ?? 0 };
    return await files.place(temp, { sha256, mode: header.mode ?? 0o644, ...owned, mtime: header.mtime ?? new Date(0) }, hostPath);
  } catch (error) {
    await rm(temp, { force: true });
    throw error;
  }
}

/**
 * Copies an entry's bytes to a new file and returns their sha256. Iterates the entry rather than using Node's
 * pipeline, which does not notice when a tar-stream (streamx) entry is destroyed mid-way and would wait forever.
 */
async function writeEntryFile(entry: AsyncIterable<unknown>, hostPath: string): Promise<string> {
  // 'wx' (O_EXCL) never follows a symlink someone slipped in at this path. Opened here, before any byte is read, so
  // the file exists by the time a failure's cleanup runs (a stream opened late would create it after the rm).
  const out = (await open(hostPath, 'wx', 0o600)).createWriteStream();
  const hash = createHash('sha256');
  try {
    for await (const chunk of entry) {
      hash.update(chunk as Buffer);
      if (!out.write(chunk as Buffer)) await once(out, 'drain');
    }
    out.end();
    await streamFinished(out);
    return hash.digest('hex');
  } catch (error) {
    out.destroy();
    throw error;
  }
}

/**
 * Each link was checked on its own when written, but chains (`a/up -> ..`, `a/out -> up/..`) can still lead
 * out; with the whole tree in place, every link that resolves must resolve inside the root.
 */
async function checkSymlinks(root: string, symlinks: LayerContext['symlinks']): Promise<void> {
  for (const link of symlinks) {
    const real = await realpath(link.hostPath).catch(() => undefined); // dangling, or replaced since
    if (real !== undefined && !within(root, real)) {
      throw new Error(`layer ${link.layer}: entry ${JSON.stringify(link.entry)}: symlink resolves outside the target`);
    }
  }
}
