import { mkdtemp, readFile, readdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { processAlive } from '@pyml/launcher/process-alive';

const PREFIX = 'pyml-batch-scratch-';
const OWNER = 'owner.pid';

/**
 * Removes the scratch directories of earlier runs whose process is gone: a run killed with SIGKILL (or by the OOM
 * killer) cannot clean up after itself, and its DuckDB spill files may be large. A directory without an owner file,
 * or whose owner still runs, is left alone.
 */
export async function sweepStaleScratchDirs(parent = tmpdir()): Promise<string[]> {
  const removed: string[] = [];
  const entries = await readdir(parent).catch(() => [] as string[]);
  for (const name of entries) {
    if (!name.startsWith(PREFIX)) continue;
    const dir = join(parent, name);
    const pid = Number((await readFile(join(dir, OWNER), 'utf8').catch(() => '')).trim());
    if (!Number.isSafeInteger(pid) || pid <= 0 || pid === process.pid || processAlive(pid)) continue;
    await rm(dir, { recursive: true, force: true });
    removed.push(dir);
  }
  return removed;
}

/** A private scratch directory for this run (DuckDB spill files, the scratch database), marked with our pid. */
export async function createScratchDir(parent = tmpdir()): Promise<string> {
  const dir = await mkdtemp(join(parent, PREFIX));
  await writeFile(join(dir, OWNER), `${process.pid}\n`);
  return dir;
}
