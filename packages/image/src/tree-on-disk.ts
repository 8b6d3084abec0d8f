import { constants } from 'node:fs';
import { lstat, mkdir, open, readlink, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { UnsafeEntry, parentOf, resolveInTree, throughSymlinkRefused, type TreeLookup, type TreeNode } from './tar-entry-rules.ts';

/**
 * The tree being unpacked, on disk under `root`. Paths handed around are relative to the root and physical: every
 * component is a real directory (symlinks already resolved beneath the root), so joining one to the root never
 * follows a link the image made.
 */

export async function lstatOrUndefined(path: string) {
  return lstat(path).catch((error: NodeJS.ErrnoException) => {
    if (error.code === 'ENOENT' || error.code === 'ENOTDIR') return undefined;
    throw error;
  });
}

/** The tree's nodes as the shared resolution rules see them. */
export function diskLookup(root: string): TreeLookup {
  return async (rel: string): Promise<TreeNode | undefined> => {
    const path = join(root, rel);
    const info = await lstatOrUndefined(path);
    if (info === undefined) return undefined;
    if (info.isSymbolicLink()) return { kind: 'symlink', target: await readlink(path) };
    return info.isDirectory() ? { kind: 'directory' } : { kind: 'other' };
  };
}

/**
 * The physical path of the directory `relDir` names, created as needed. A component that is a symlink is resolved
 * beneath the root (never followed out); one that leads out, or to nothing, is refused.
 */
export async function directoryBeneath(root: string, relDir: string, create: boolean): Promise<string> {
  let current = '';
  if (relDir === '') return current;
  for (const part of relDir.split('/')) {
    const next = current === '' ? part : `${current}/${part}`;
    const path = join(root, next);
    const info = await lstatOrUndefined(path);
    if (info === undefined) {
      if (!create) throw new UnsafeEntry(`/${relDir} does not exist`);
      await mkdir(path, { mode: 0o755 });
      current = next;
      continue;
    }
    if (info.isSymbolicLink()) {
      const resolved = await resolveInTree(diskLookup(root), current, part);
      if ('escapesVia' in resolved || !resolved.exists) throw throughSymlinkRefused(next);
      if (resolved.node?.kind !== 'directory') throw new UnsafeEntry(`/${next} is not a directory`);
      current = resolved.rel;
      continue;
    }
    if (!info.isDirectory()) {
      if (!create) throw new UnsafeEntry(`/${next} is not a directory`);
      // A lower layer's file where this layer has a directory: the upper layer wins.
      await rm(path, { force: true });
      await mkdir(path, { mode: 0o755 });
    }
    current = next;
  }
  return current;
}

/**
 * Applies directory modes last (so a read-only directory could still be filled), deepest first. Each directory is
 * found again from the root, component by component with lstat: one that a later entry replaced by a symlink (or
 * anything else) is passed by, and the chmod goes through a descriptor opened with O_NOFOLLOW, never a path.
 */
export async function applyDirectoryModes(root: string, modes: Map<string, number>): Promise<void> {
  const deepestFirst = [...modes].sort((a, b) => b[0].split('/').length - a[0].split('/').length);
  for (const [rel, mode] of deepestFirst) {
    if (!(await isRealDirectoryPath(root, rel))) continue;
    const handle = await open(join(root, rel), constants.O_RDONLY | constants.O_DIRECTORY | constants.O_NOFOLLOW).catch(() => undefined);
    if (handle === undefined) continue;
    try {
      await handle.chmod(mode);
    } finally {
      await handle.close();
    }
  }
}

async function isRealDirectoryPath(root: string, rel: string): Promise<boolean> {
  let current = root;
  for (const part of rel.split('/')) {
    current = join(current, part);
    const info = await lstatOrUndefined(current);
    if (!info?.isDirectory()) return false;
  }
  return true;
}

/** Where a symlink in the tree came from, so a late refusal can name it. */
export interface SymlinkOrigin {
  layer: string;
  entry: string;
}

/**
 * Each symlink was checked when written, but a later entry can change what its path passes through (a chain
 * `a/up -> ..`, `a/out -> up/..`, or a directory replaced by a link): with every layer down, each link still in
 * place must resolve beneath the root.
 */
export async function checkSymlinksStayBeneath(root: string, symlinks: Map<string, SymlinkOrigin>): Promise<void> {
  const lookup = diskLookup(root);
  for (const [rel, origin] of symlinks) {
    const node = await lookup(rel);
    if (node?.kind !== 'symlink') continue;
    const resolved = await resolveInTree(lookup, parentOf(rel), node.target);
    if ('escapesVia' in resolved) {
      throw new Error(`layer ${origin.layer}: entry ${JSON.stringify(origin.entry)}: symlink /${rel} -> ${node.target} resolves outside the image root once all layers are applied${resolved.escapesVia ? ` (through /${resolved.escapesVia})` : ''}`);
    }
  }
}
