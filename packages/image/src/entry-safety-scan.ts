import { posix } from 'node:path';
import type tarStream from 'tar-stream';
import {
  SPECIAL_MODE_BITS, UnsafeEntry, checkedSymlinkTarget, directoryBeneath, entryPath, hardLinkSource, isDeviceType,
  parentOf, resolveInTree, whiteout, type MutableTree, type TreeNode,
} from './tar-entry-rules.ts';

/** One entry of a layer that unpack would refuse, drop bits of or skip. */
export interface UnsafeEntryReport {
  /** The layer's index, bottom first. */
  layer: number;
  digest: string;
  /** The tar entry's name as written ('' for a problem of the layer as a whole, such as its size). */
  entry: string;
  problem: string;
}

interface ModelNode {
  node: TreeNode;
  /** For symlinks: which entry made it, so a chain found at the end can be named. */
  origin?: { layer: number; digest: string; entry: string };
}

/**
 * Checks an image's entries, layer by layer, against the rules unpack applies (tar-entry-rules.ts), on a model of
 * the merged tree instead of a disk: nothing is written. Unlike unpack it goes on past a problem and reports each.
 */
export class EntrySafetyScan {
  private readonly nodes = new Map<string, ModelNode>();
  readonly reports: UnsafeEntryReport[] = [];
  private readonly tree: MutableTree = {
    lookup: async (rel) => (rel === '' ? { kind: 'directory' } : this.nodes.get(rel)?.node),
    makeDirectory: async (rel) => {
      this.remove(rel);
      this.nodes.set(rel, { node: { kind: 'directory' } });
    },
  };

  /** Scans one layer's entries (its uncompressed tar, fed to `extract`). */
  async scanLayer(layer: number, digest: string, extract: tarStream.Extract): Promise<void> {
    const written = new Set<string>();
    for await (const entry of extract) {
      try {
        await this.apply(entry.header, { layer, digest, entry: entry.header.name }, written);
      } catch (error) {
        if (!(error instanceof UnsafeEntry)) throw error;
        this.report(layer, digest, entry.header.name, error.message);
      }
      entry.resume();
    }
  }

  /** A problem found outside the entries (a size limit, a tar that does not parse). */
  report(layer: number, digest: string, entry: string, problem: string): void {
    this.reports.push({ layer, digest, entry, problem });
  }

  /** With every layer scanned: symlinks that a later entry made lead out (chains), as unpack's last check does. */
  async finish(): Promise<void> {
    for (const [rel, { node, origin }] of this.nodes) {
      if (node.kind !== 'symlink' || !origin) continue;
      const resolved = await resolveInTree(this.tree.lookup, parentOf(rel), node.target).catch((error: Error) => ({ error }));
      if ('escapesVia' in resolved) {
        this.report(origin.layer, origin.digest, origin.entry, `symlink /${rel} -> ${node.target} resolves outside the image root once all layers are applied${resolved.escapesVia ? ` (through /${resolved.escapesVia})` : ''}; links must resolve beneath the root`);
      } else if ('error' in resolved) {
        this.report(origin.layer, origin.digest, origin.entry, resolved.error.message);
      }
    }
  }

  private async apply(header: tarStream.Header, origin: ModelNode['origin'] & object, written: Set<string>): Promise<void> {
    const rel = entryPath(header.name);
    if (rel === '') return;
    const base = posix.basename(rel);
    const hidden = whiteout(base);
    if (hidden) {
      if (hidden.kind === 'aufs-metadata') return;
      const parent = await directoryBeneath(this.tree, parentOf(rel), true);
      if (hidden.kind === 'opaque') {
        const prefix = parent === '' ? '' : `${parent}/`;
        const lexicalPrefix = parentOf(rel) === '' ? '' : `${parentOf(rel)}/`;
        for (const key of [...this.nodes.keys()]) {
          if (!key.startsWith(prefix) || key.slice(prefix.length).includes('/')) continue;
          const childRel = lexicalPrefix + key.slice(prefix.length);
          if (![...written].some((w) => w === childRel || w.startsWith(`${childRel}/`))) this.remove(key);
        }
      } else if (!written.has(posix.join(parentOf(rel), hidden.name))) {
        this.remove(parent === '' ? hidden.name : `${parent}/${hidden.name}`);
      }
      return;
    }
    if (isDeviceType(header.type)) throw new UnsafeEntry(`${header.type} refused (skipped at unpack: a model's filesystem has no devices)`);
    const parent = await directoryBeneath(this.tree, parentOf(rel), true);
    const physical = parent === '' ? base : `${parent}/${base}`;
    written.add(rel);
    const special = ((header.mode ?? 0) & SPECIAL_MODE_BITS & ~0o1000) !== 0;
    switch (header.type ?? 'file') {
      case 'directory':
        if (this.nodes.get(physical)?.node.kind !== 'directory') await this.tree.makeDirectory(physical);
        break;
      case 'file':
      case 'contiguous-file':
        this.remove(physical);
        this.nodes.set(physical, { node: { kind: 'other' } });
        break;
      case 'symlink': {
        const target = await checkedSymlinkTarget(this.tree.lookup, parent, header.linkname);
        this.remove(physical);
        this.nodes.set(physical, { node: { kind: 'symlink', target }, origin });
        break;
      }
      case 'link': {
        const source = await hardLinkSource(this.tree, header.linkname, physical);
        this.remove(physical);
        this.nodes.set(physical, { node: source.node, origin: source.node.kind === 'symlink' ? origin : undefined });
        break;
      }
      default:
        return;
    }
    if (special) {
      throw new UnsafeEntry(`mode ${(header.mode & 0o7777).toString(8)} has a setuid/setgid bit (dropped at unpack: expected plain permission bits)`);
    }
  }

  private remove(rel: string): void {
    const existing = this.nodes.get(rel);
    this.nodes.delete(rel);
    if (existing !== undefined && existing.node.kind !== 'directory') return;
    const prefix = `${rel}/`;
    for (const key of this.nodes.keys()) if (key.startsWith(prefix)) this.nodes.delete(key);
  }
}
