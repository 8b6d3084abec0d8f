import { constants } from 'node:fs';
import { lstat, mkdir, open, readlink, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { parentOf, resolveInTree, type MutableTree, type TreeLookup, type TreeNode } from './tar-entry-rules.ts';

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

/** The tree on disk, for the shared path rules (directoryBeneath, hardLinkSource). */
export function diskTree(root: string): MutableTree {
  return {
    lookup: diskLookup(root),
    async makeDirectory(rel: string): Promise<void> {
      const path = join(root, rel);
      // A lower layer's file (or link) where this layer has a directory: the upper layer wins.
      if (await lstatOrUndefined(path)) await rm(path, { force: true });
      await mkdir(path, { mode: 0o755 });
    },
  };
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
    const named = `layer ${origin.layer}: entry ${JSON.stringify(origin.entry)}`;
    const resolved = await resolveInTree(lookup, parentOf(rel), node.target).catch((error: Error) => {
      throw new Error(`${named}: ${error.message}`); // a loop of links
    });
    if ('escapesVia' in resolved) {
      throw new Error(`layer ${origin.layer}: entry ${JSON.stringify(origin.entry)}: symlink /${rel} -> ${node.target} resolves outside the image root once all layers are applied${resolved.escapesVia ? ` (through /${resolved.escapesVia})` : ''}; links must resolve beneath the root`);
    }
  }
}
