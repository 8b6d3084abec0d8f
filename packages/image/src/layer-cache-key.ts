import { createHash } from 'node:crypto';
import type { PlannedEntry } from './file-entry.ts';

/** Bump when the bytes buildLayer writes for the same inputs change, so old cache entries stop matching. */
const LAYER_FORMAT = 'pyml-layer-v1';

/**
 * A key that changes whenever a layer's bytes could: each entry's image path and mode, sources by real path,
 * size, mtime and inode (cheap to stat, and any edit changes at least one), inline content by its hash; plus
 * the requested compression and the timestamp. Equal keys let buildLayer skip reading the sources.
 */
export function deriveLayerCacheKey(entries: PlannedEntry[], compression: string, sourceDateEpoch: number): string {
  const hash = createHash('sha256');
  hash.update(JSON.stringify([LAYER_FORMAT, compression, sourceDateEpoch]));
  for (const entry of entries) {
    let identity: unknown[];
    switch (entry.kind) {
      case 'directory':
        identity = [entry.name, entry.mode];
        break;
      case 'symlink':
        identity = [entry.name, entry.mode, entry.linkTarget];
        break;
      case 'file':
        identity = 'content' in entry
          ? [entry.name, entry.mode, 'content', createHash('sha256').update(entry.content).digest('hex')]
          : [entry.name, entry.mode, 'source', entry.realSource, entry.size, entry.mtimeMs, entry.ino];
        break;
    }
    hash.update(JSON.stringify(identity) + '\n');
  }
  return `${LAYER_FORMAT}:derived:sha256:${hash.digest('hex')}`;
}
