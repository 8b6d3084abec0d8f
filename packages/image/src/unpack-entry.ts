import { link, lchown, lstat, mkdir, readdir, rm, symlink } from 'node:fs/promises';
import { join, posix } from 'node:path';
import type tarStream from 'tar-stream';
import { writeEntryFile, type FileMetadata } from './entry-file.ts';
import type { RecordedEntry, SharedFiles } from './shared-files.ts';
import {
  checkedSymlinkTarget, directoryBeneath, entryPath, hardLinkSource, isDeviceType, parentOf, safeMode, whiteout,
} from './tar-entry-rules.ts';
import { diskLookup, diskTree, lstatOrUndefined, type SymlinkOrigin } from './tree-on-disk.ts';

/** What stays the same across an image's layers while it unpacks. */
export interface UnpackState {
  /** The temp tree's real path. */
  root: string;
  isRoot: boolean;
  /** Final modes of directories (by physical path), applied last so a read-only directory can still be filled. */
  dirModes: Map<string, number>;
  /** Every symlink made (by physical path), checked again once all layers are down. */
  symlinks: Map<string, SymlinkOrigin>;
  sharedFiles?: SharedFiles;
  /** Entries whose setuid, setgid or sticky bit was dropped. */
  specialBitsStripped: number;
  /** Device nodes and FIFOs passed by. */
  devicesSkipped: number;
}

/** What one layer's application needs to know. */
export interface LayerContext {
  state: UnpackState;
  layer: string;
  /** Paths (as named by entries) this layer wrote: whiteouts in the same layer must not remove them. */
  written: Set<string>;
  /** The entries applied so far, for the shared store's record of this layer (absent when not recording). */
  record?: RecordedEntry[];
}

/** A tar entry's bytes: streaming from its layer, or a stored copy when the layer is replayed from its record. */
export type EntryBody = AsyncIterable<unknown> | { stored: string };

/** Applies one entry under the rules of tar-entry-rules.ts; an UnsafeEntry (or fs error) when it cannot. */
export async function applyEntry(header: tarStream.Header, body: EntryBody, ctx: LayerContext): Promise<void> {
  const { state } = ctx;
  const rel = entryPath(header.name);
  if (rel === '') return; // the root directory itself
  const recorded: RecordedEntry = {
    name: header.name, type: header.type ?? 'file', mode: header.mode ?? 0o644, uid: header.uid ?? 0, gid: header.gid ?? 0, mtime: header.mtime?.getTime() ?? 0,
    ...(header.linkname ? { linkname: header.linkname } : {}),
  };
  ctx.record?.push(recorded);

  const base = posix.basename(rel);
  const hidden = whiteout(base);
  if (hidden) return applyWhiteout(ctx, parentOf(rel), hidden);
  if (isDeviceType(header.type)) {
    state.devicesSkipped += 1;
    return; // no model needs one, and they need privileges to create
  }

  const parent = await directoryBeneath(diskTree(state.root), parentOf(rel), true);
  const physical = parent === '' ? base : `${parent}/${base}`;
  const hostPath = join(state.root, physical);
  const existing = await lstatOrUndefined(hostPath);
  const owner = state.isRoot ? { uid: header.uid ?? 0, gid: header.gid ?? 0 } : undefined;
  ctx.written.add(rel);

  switch (header.type ?? 'file') {
    case 'directory': {
      const { mode, stripped } = safeMode(header.mode, 0o755);
      if (stripped) state.specialBitsStripped += 1;
      if (existing && !existing.isDirectory()) await rm(hostPath, { recursive: true, force: true });
      if (!existing || !existing.isDirectory()) await mkdir(hostPath, { mode: 0o755 });
      state.dirModes.set(physical, mode);
      if (owner) await lchown(hostPath, owner.uid, owner.gid);
      return;
    }
    case 'file':
    case 'contiguous-file': {
      const { mode, stripped } = safeMode(header.mode, 0o644);
      if (stripped) state.specialBitsStripped += 1;
      if (existing) await rm(hostPath, { recursive: true, force: true });
      if ('stored' in body) {
        if (!state.sharedFiles) throw new Error('a stored file without a shared store');
        return state.sharedFiles.linkStored(body.stored, hostPath);
      }
      const metadata: FileMetadata = { mode, mtime: header.mtime ?? new Date(0), owner };
      if (state.sharedFiles) {
        recorded.stored = await writeSharedFile(body, hostPath, metadata, state);
        // A file the store could not take cannot be replayed: this layer is not recorded.
        if (recorded.stored === undefined) ctx.record = undefined;
        return;
      }
      await writeEntryFile(body, hostPath, metadata);
      return;
    }
    case 'symlink': {
      const linkTarget = await checkedSymlinkTarget(diskLookup(state.root), parent, header.linkname);
      if (existing) await rm(hostPath, { recursive: true, force: true });
      await symlink(linkTarget, hostPath);
      state.symlinks.set(physical, { layer: ctx.layer, entry: header.name });
      if (owner) await lchown(hostPath, owner.uid, owner.gid);
      return;
    }
    case 'link':
      return applyHardLink(header, physical, hostPath, existing !== undefined, ctx);
    default:
      return; // metadata entries tar-stream passes on (a pax global header): nothing to write
  }
}

/** A hard link shares its source's inode; which sources are allowed is hardLinkSource's rule. */
async function applyHardLink(header: tarStream.Header, physical: string, hostPath: string, replacing: boolean, ctx: LayerContext): Promise<void> {
  const { root } = ctx.state;
  const source = await hardLinkSource(diskTree(root), header.linkname, physical);
  if (replacing) await rm(hostPath, { recursive: true, force: true });
  await link(join(root, source.physical), hostPath);
  if (source.node.kind === 'symlink') ctx.state.symlinks.set(physical, { layer: ctx.layer, entry: header.name });
}

async function applyWhiteout(ctx: LayerContext, relParent: string, what: NonNullable<ReturnType<typeof whiteout>>): Promise<void> {
  if (what.kind === 'aufs-metadata') return; // other AUFS metadata, not a whiteout
  const parent = await directoryBeneath(diskTree(ctx.state.root), relParent, true);
  const parentHost = join(ctx.state.root, parent);
  if (what.kind === 'opaque') {
    // Opaque directory: hide everything lower layers put here, keep what this layer wrote.
    const prefix = relParent === '' ? '' : relParent + '/';
    for (const child of await readdir(parentHost)) {
      const childRel = prefix + child;
      const keptByThisLayer = [...ctx.written].some((w) => w === childRel || w.startsWith(childRel + '/'));
      if (!keptByThisLayer) await rm(join(parentHost, child), { recursive: true, force: true });
    }
    return;
  }
  if (ctx.written.has(posix.join(relParent, what.name))) return;
  // rm removes a symlink itself, never what it points at.
  await rm(join(parentHost, what.name), { recursive: true, force: true });
}

/**
 * Writes the entry into the shared store's directory, hashing as it goes, then links it in at `hostPath`. Returns
 * the stored copy's name (undefined when the store could not take it). The stored name carries the mode given
 * here, special bits already dropped.
 */
async function writeSharedFile(body: AsyncIterable<unknown>, hostPath: string, metadata: FileMetadata, state: UnpackState): Promise<string | undefined> {
  const files = state.sharedFiles!;
  const temp = await files.tempPath();
  try {
    const sha256 = await writeEntryFile(body, temp, metadata);
    const owned = metadata.owner ?? { uid: process.getuid?.() ?? 0, gid: process.getgid?.() ?? 0 };
    return await files.place(temp, { sha256, mode: metadata.mode, ...owned, mtime: metadata.mtime }, hostPath);
  } catch (error) {
    await rm(temp, { force: true });
    throw error;
  }
}

/** The size of a stored copy a replayed layer links in (counted against the size limits like streamed bytes). */
export async function storedSize(files: SharedFiles, name: string): Promise<number> {
  return (await lstat(join(files.dir, name))).size;
}
