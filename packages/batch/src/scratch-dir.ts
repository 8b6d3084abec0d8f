import { mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ownedPrefix, removeDeadRunsLeftovers } from '@pyml/image';

const PREFIX = 'pyml-batch-scratch-';

/** Removes the scratch directories that killed runs left (their DuckDB spill files may be large). */
export function sweepStaleScratchDirs(parent = tmpdir()): Promise<void> {
  return removeDeadRunsLeftovers(parent, PREFIX);
}

/** A private scratch directory for this run (DuckDB spill files, the scratch database), named with our pid. */
export function createScratchDir(parent = tmpdir()): Promise<string> {
  return mkdtemp(join(parent, ownedPrefix(PREFIX)));
}
