import { posix } from 'node:path';

/**
 * The rules every layer entry must follow to be unpacked: one module, used both by `unpack` (which refuses the
 * first entry that breaks one) and by `verify` (which reports every such entry). A layer is untrusted input: its
 * entries may come in any order and name any path, link or mode.
 */

/** An entry that breaks a rule; `message` says what was expected. */
export class UnsafeEntry extends Error {}

/** The entry's path relative to the root ('' for the root itself); absolute paths, `..` and NUL bytes are refused. */
export function entryPath(name: string): string {
  if (name.startsWith('/')) throw new UnsafeEntry('absolute path refused (entries must be relative to the image root)');
  const parts = name.split('/').filter((p) => p !== '' && p !== '.');
  if (parts.includes('..')) throw new UnsafeEntry('path with ".." refused (entries must stay beneath the image root)');
  if (parts.some((p) => p.includes('\0'))) throw new UnsafeEntry('path with a NUL byte refused');
  return parts.join('/');
}

/** The parent directory of a relative path ('' for the root). */
export function parentOf(rel: string): string {
  const dir = posix.dirname(rel);
  return dir === '.' ? '' : dir;
}

export type Whiteout = { kind: 'opaque' } | { kind: 'hide'; name: string } | { kind: 'aufs-metadata' };

/** What a `.wh.` entry means; a whiteout must name one child of its own directory. */
export function whiteout(base: string): Whiteout | undefined {
  if (!base.startsWith('.wh.')) return undefined;
  if (base === '.wh..wh..opq') return { kind: 'opaque' };
  if (base.startsWith('.wh..wh.')) return { kind: 'aufs-metadata' };
  const name = base.slice('.wh.'.length);
  if (name === '' || name === '.' || name === '..' || name.includes('/')) {
    throw new UnsafeEntry(`whiteout ${JSON.stringify(base)} refused: a whiteout must name one file of its own directory`);
  }
  return { kind: 'hide', name };
}

/** setuid, setgid and sticky: dropped when unpacking (a model needs none of them, and a setuid file is a way up). */
export const SPECIAL_MODE_BITS = 0o7000;

export function safeMode(mode: number | undefined, fallback: number): { mode: number; stripped: boolean } {
  const bits = (mode ?? fallback) & 0o7777;
  return { mode: bits & ~SPECIAL_MODE_BITS, stripped: (bits & SPECIAL_MODE_BITS) !== 0 };
}

/** Devices and FIFOs are skipped by unpack (no model needs one, and they need privileges) and reported by verify. */
export function isDeviceType(type: string | null | undefined): boolean {
  return type === 'character-device' || type === 'block-device' || type === 'fifo';
}

/** A node of the tree being unpacked, as far as path resolution cares. */
export type TreeNode = { kind: 'directory' } | { kind: 'symlink'; target: string } | { kind: 'other' };

/** Looks a path up in the tree without following it: a real directory on disk, or verify's model of one. */
export type TreeLookup = (rel: string) => Promise<TreeNode | undefined>;

export type Resolution =
  /** Where the path leads, beneath the root, every symlink followed; `exists` is false past a missing component. */
  | { rel: string; exists: boolean; node?: TreeNode }
  /** The path leads above the root; `via` is the symlink whose target climbs out ('' when the text itself does). */
  | { escapesVia: string };

const MAX_SYMLINKS = 40;

/**
 * Resolves `text` from the directory `fromDir` the way the kernel would on the unpacked tree (no chroot):
 * symlinks are followed, and `..` at the root leaves it, which is reported instead of followed. Absolute symlink
 * targets are taken from the root (unpack rewrites them relative so the kernel agrees). Past a missing
 * component the rest is applied by text, so a path that would climb out once its parts exist is caught too.
 */
export async function resolveInTree(lookup: TreeLookup, fromDir: string, text: string, followLast = true): Promise<Resolution> {
  const stack = fromDir === '' ? [] : fromDir.split('/');
  let pending = pathParts(text);
  if (text.startsWith('/')) stack.length = 0;
  let exists = true;
  let via = '';
  let followed = 0;
  let node: TreeNode | undefined = { kind: 'directory' };
  while (pending.length > 0) {
    const part = pending.shift()!;
    if (part === '..') {
      if (stack.length === 0) return { escapesVia: via };
      stack.pop();
      node = exists ? await lookup(stack.join('/')) ?? { kind: 'directory' } : undefined;
      continue;
    }
    stack.push(part);
    if (!exists) continue;
    const rel = stack.join('/');
    node = await lookup(rel);
    if (node === undefined) {
      exists = false;
      continue;
    }
    if (node.kind === 'symlink' && (pending.length > 0 || followLast)) {
      // A loop never resolves (the kernel says ELOOP): it leads nowhere, so not out either.
      if (++followed > MAX_SYMLINKS) return { rel: [...stack, ...pending].join('/'), exists: false };
      via = rel;
      stack.pop();
      if (node.target.startsWith('/')) stack.length = 0;
      pending = [...pathParts(node.target), ...pending];
      node = stack.length === 0 ? { kind: 'directory' } : await lookup(stack.join('/'));
      continue;
    }
    if (node.kind !== 'directory' && pending.length > 0) {
      // Not a directory: the kernel stops here (ENOTDIR); nothing beyond it can be reached.
      return { rel: [...stack, ...pending].join('/'), exists: false };
    }
  }
  return { rel: stack.join('/'), exists, node: exists ? node : undefined };
}

function pathParts(text: string): string[] {
  return text.split('/').filter((p) => p !== '' && p !== '.');
}

/**
 * The symlink target to write for a link at `linkDir/…` (the directory it physically lands in), or an error
 * when it would lead above the root. Absolute targets are made relative to the link, so the tree, unpacked
 * without a chroot, never points at the host's files.
 */
export async function checkedSymlinkTarget(lookup: TreeLookup, linkDir: string, linkname: string | null | undefined): Promise<string> {
  if (!linkname) throw new UnsafeEntry('symlink without a target');
  if (linkname.includes('\0')) throw new UnsafeEntry('symlink target with a NUL byte refused');
  const text = linkname.startsWith('/') ? posix.relative('/' + linkDir, posix.normalize(linkname)) || '.' : linkname;
  const resolved = await resolveInTree(lookup, linkDir, text);
  if ('escapesVia' in resolved) {
    const how = resolved.escapesVia === '' ? '' : ` (through /${resolved.escapesVia})`;
    throw new UnsafeEntry(`symlink to ${linkname} refused: from /${linkDir} it leads outside the image root${how}; links must resolve beneath the root`);
  }
  return text;
}

/** The message for a write (or hard link) whose path passes through a symlink that leads out. */
export function throughSymlinkRefused(linkRel: string): UnsafeEntry {
  return new UnsafeEntry(`refused to write through symlink /${linkRel}: its target is missing or outside the image root`);
}

/** A tree being unpacked (on disk) or modelled (by verify): what the path rules need to look at and change. */
export interface MutableTree {
  lookup: TreeLookup;
  /** Makes a directory at `rel`, whose parent exists; a non-directory there is replaced (the upper layer wins). */
  makeDirectory(rel: string): Promise<void>;
}

/**
 * The physical path (every component a real directory) of the directory `relDir` names, created as needed. A
 * component that is a symlink is resolved beneath the root, never followed out; one that leads out, or to
 * nothing, is refused.
 */
export async function directoryBeneath(tree: MutableTree, relDir: string, create: boolean): Promise<string> {
  let current = '';
  if (relDir === '') return current;
  for (const part of relDir.split('/')) {
    const next = current === '' ? part : `${current}/${part}`;
    const node = await tree.lookup(next);
    if (node?.kind === 'symlink') {
      const resolved = await resolveInTree(tree.lookup, current, part);
      if ('escapesVia' in resolved || !resolved.exists) throw throughSymlinkRefused(next);
      if (resolved.node?.kind !== 'directory') throw new UnsafeEntry(`/${next} is not a directory`);
      current = resolved.rel;
      continue;
    }
    if (node?.kind !== 'directory') {
      if (!create) throw new UnsafeEntry(node === undefined ? `/${relDir} does not exist` : `/${next} is not a directory`);
      await tree.makeDirectory(next);
    }
    current = next;
  }
  return current;
}

/**
 * The node a hard link at `physical` would share, found beneath the root like any path. A hard link to a symlink
 * is a second symlink with the same text at a new place, so it must pass the rule a symlink written there would
 * (its relative text may climb out from the new place). Directories cannot be hard-linked.
 */
export async function hardLinkSource(tree: MutableTree, linkname: string | null | undefined, physical: string): Promise<{ physical: string; node: TreeNode }> {
  const targetRel = entryPath(linkname ?? '');
  if (targetRel === '') throw new UnsafeEntry('hard link to the root refused');
  let targetParent: string;
  try {
    targetParent = await directoryBeneath(tree, parentOf(targetRel), false);
  } catch (error) {
    if (error instanceof UnsafeEntry && / does not exist$/.test(error.message)) throw new UnsafeEntry(`hard link target ${linkname} does not exist`);
    throw error;
  }
  const source = targetParent === '' ? posix.basename(targetRel) : `${targetParent}/${posix.basename(targetRel)}`;
  if (source === physical) throw new UnsafeEntry('hard link to itself refused');
  const node = await tree.lookup(source);
  if (!node) throw new UnsafeEntry(`hard link target ${linkname} does not exist`);
  if (node.kind === 'directory') throw new UnsafeEntry(`hard link to directory ${linkname} refused`);
  if (node.kind === 'symlink') {
    const resolved = await resolveInTree(tree.lookup, parentOf(physical), node.target);
    if ('escapesVia' in resolved) {
      throw new UnsafeEntry(`hard link to symlink ${linkname} (-> ${node.target}) refused: at /${physical} it would lead outside the image root; links must resolve beneath the root`);
    }
  }
  return { physical: source, node };
}

/** Limits on how much a layer and an image may unpack to (uncompressed tar bytes): a compression bomb stops early. */
export interface UnpackLimits {
  /** The whole image. */
  maxImageBytes: number;
  /** A gzip layer may expand at most this many times its compressed size... */
  maxLayerExpansion: number;
  /** ...but always at least this much. */
  minLayerBytes: number;
}

export const DEFAULT_UNPACK_LIMITS: UnpackLimits = {
  maxImageBytes: 32 * 1024 ** 3,
  maxLayerExpansion: 100,
  minLayerBytes: 64 * 1024 ** 2,
};

/** The environment variables that raise the limits for a whole process tree (the CLI's --max-unpacked-bytes sets the first). */
export const MAX_UNPACKED_BYTES_ENV = 'PYML_MAX_UNPACKED_BYTES';
export const MAX_LAYER_EXPANSION_ENV = 'PYML_MAX_LAYER_EXPANSION';

/** The limits: defaults, raised or lowered by PYML_MAX_UNPACKED_BYTES and PYML_MAX_LAYER_EXPANSION. */
export function unpackLimitsFromEnv(env: NodeJS.ProcessEnv = process.env): UnpackLimits {
  const limits = { ...DEFAULT_UNPACK_LIMITS };
  const total = env[MAX_UNPACKED_BYTES_ENV];
  if (total !== undefined && total !== '') limits.maxImageBytes = parseByteSize(total, MAX_UNPACKED_BYTES_ENV);
  const ratio = env[MAX_LAYER_EXPANSION_ENV];
  if (ratio !== undefined && ratio !== '') {
    const n = Number(ratio);
    if (!Number.isFinite(n) || n < 1) throw new Error(`${MAX_LAYER_EXPANSION_ENV}=${ratio}: expected a number of at least 1`);
    limits.maxLayerExpansion = n;
  }
  return limits;
}

/** "40G", "512MiB", "1000000": bytes. Suffixes are binary (K = 1024). */
export function parseByteSize(text: string, what: string): number {
  const match = /^\s*(\d+(?:\.\d+)?)\s*([kmgt]?)(?:i?b)?\s*$/i.exec(text);
  if (!match) throw new Error(`${what}=${text}: expected a size such as 40G, 512M or a number of bytes`);
  const scale = 1024 ** ' kmgt'.indexOf((match[2] || ' ').toLowerCase());
  const bytes = Math.floor(Number(match[1]) * scale);
  if (bytes < 1) throw new Error(`${what}=${text}: must be at least 1 byte`);
  return bytes;
}

/**
 * The most one gzip layer may unpack to (the image's limit applies on top). An uncompressed layer's tar is its
 * blob, whose size its digest already fixes: only the image's limit applies to it.
 */
export function layerByteLimit(layer: { size: number; gzip: boolean }, limits: UnpackLimits): number {
  if (!layer.gzip) return Infinity;
  return Math.max(limits.minLayerBytes, layer.size * limits.maxLayerExpansion);
}

/** Counts a layer's uncompressed bytes against both limits; `add` throws once either is passed. */
export class UnpackedBytesBudget {
  private imageBytes = 0;

  constructor(readonly limits: UnpackLimits) {}

  layer(digest: string, size: number, gzip: boolean): (n: number) => void {
    const limit = layerByteLimit({ size, gzip }, this.limits);
    let layerBytes = 0;
    return (n) => {
      layerBytes += n;
      this.imageBytes += n;
      if (this.imageBytes > this.limits.maxImageBytes) {
        throw new Error(`layer ${digest}: the image unpacks to more than ${formatLimit(this.limits.maxImageBytes)}, the limit; raise it with ${MAX_UNPACKED_BYTES_ENV} or --max-unpacked-bytes`);
      }
      if (layerBytes > limit) {
        throw new Error(`layer ${digest} unpacks to more than ${formatLimit(limit)}, refused as a likely compression bomb (a gzip layer of ${formatLimit(size)} may expand ${this.limits.maxLayerExpansion}×, at least to ${formatLimit(this.limits.minLayerBytes)}; raise the factor with ${MAX_LAYER_EXPANSION_ENV}=N)`);
      }
    };
  }
}

function formatLimit(bytes: number): string {
  for (const [unit, scale] of [['GiB', 1024 ** 3], ['MiB', 1024 ** 2], ['KiB', 1024]] as const) {
    if (bytes >= scale) return `${Number((bytes / scale).toFixed(2))} ${unit}`;
  }
  return `${bytes} bytes`;
}
