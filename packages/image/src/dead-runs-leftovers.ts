import { readdir, rm } from 'node:fs/promises';
import { join } from 'node:path';

/**
 * What a run leaves on disk while it works is named `<prefix><pid>-…`, so that a later run can tell the leftovers of
 * a killed run (SIGKILL, the OOM killer: no chance to clean up) from those of one still running. This removes the
 * entries of `parent` named so whose process is gone.
 */
export async function removeDeadRunsLeftovers(parent: string, prefix: string): Promise<void> {
  for (const name of await readdir(parent).catch(() => [] as string[])) {
    if (!name.startsWith(prefix)) continue;
    const pid = Number(/^(\d+)-/.exec(name.slice(prefix.length))?.[1]);
    if (Number.isSafeInteger(pid) && pid > 0 && pid !== process.pid && !processAlive(pid)) await rm(join(parent, name), { recursive: true, force: true });
  }
}

/** The name prefix of this run's leftovers. */
export function ownedPrefix(prefix: string): string {
  return `${prefix}${process.pid}-`;
}

/** Whether a process with this id exists on this host (EPERM: it does, as another user's): how leftovers of killed runs are told from live ones. */
export function processAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'EPERM';
  }
}
