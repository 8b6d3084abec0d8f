import { lstat, readdir, rm, utimes } from 'node:fs/promises';
import { join } from 'node:path';

/** One thing a cache directory holds (an unpacked tree, a pulled layout or tarball, a blob), named by its digest. */
export interface CacheEntry {
  name: string;
  path: string;
  /**
   * Its status-change time: every command that runs an image sets its entry's times to now, and a blob's changes
   * each time a build or pull links it into a layout.
   */
  lastUsed: Date;
  /** A dot-name: an unpack or pull in progress, or the remains of one that died. */
  temporary: boolean;
}

export interface PruneDecision {
  entry: CacheEntry;
  remove: boolean;
  /** Why it is kept: "in use by process 1234", "used 2 h ago". */
  reason?: string;
}

/** Temp entries younger than this may belong to a pull or unpack still running. */
const TEMP_GRACE_MS = 24 * 3600_000;

/** The entries of a cache directory; `skip` names its own bookkeeping (such as the shared-files store). */
export async function listCacheEntries(dir: string, skip: string[] = []): Promise<CacheEntry[]> {
  const names = await readdir(dir).catch(() => [] as string[]);
  const entries: CacheEntry[] = [];
  for (const name of names.filter((n) => !skip.includes(n)).sort()) {
    const path = join(dir, name);
    const info = await lstat(path).catch(() => undefined);
    if (info) entries.push({ name, path, lastUsed: info.ctime, temporary: name.startsWith('.') });
  }
  return entries;
}

/** Records a use of a cached entry (setting its times changes its ctime), which prune's --unused-for reads. */
export async function markUsed(path: string): Promise<void> {
  const now = new Date();
  await utimes(path, now, now).catch(() => {});
}

/**
 * Decides, entry by entry, what a prune removes: nothing a running process uses, nothing used within
 * `unusedForMs`, and a temp entry only once it is a day old.
 */
export function decidePrune(entries: CacheEntry[], inUse: Map<string, number[]>, unusedForMs: number, now = Date.now()): PruneDecision[] {
  return entries.map((entry) => {
    const pids = inUse.get(entry.path);
    if (pids) return { entry, remove: false, reason: `in use by process ${pids.join(', ')}` };
    const age = now - entry.lastUsed.getTime();
    if (entry.temporary && age < TEMP_GRACE_MS) return { entry, remove: false, reason: 'being written' };
    if (!entry.temporary && age < unusedForMs) return { entry, remove: false, reason: `used ${formatAge(age)} ago` };
    return { entry, remove: true };
  });
}

export async function removeEntry(entry: CacheEntry): Promise<void> {
  await rm(entry.path, { recursive: true, force: true });
}

function formatAge(ms: number): string {
  if (ms < 120_000) return `${Math.round(ms / 1000)} s`;
  if (ms < 2 * 3600_000) return `${Math.round(ms / 60_000)} min`;
  if (ms < 2 * 86_400_000) return `${Math.round(ms / 3600_000)} h`;
  return `${Math.round(ms / 86_400_000)} d`;
}
