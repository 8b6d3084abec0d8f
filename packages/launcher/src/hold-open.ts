import { open, type FileHandle } from 'node:fs/promises';

/**
 * Keeps `paths` open until released, so a prune sees them in use (processesUsing reads open files from /proc):
 * `pyml serve` holds the trees and images it may start again at any time.
 */
export async function holdOpen(paths: string[]): Promise<{ release(): Promise<void> }> {
  const handles: FileHandle[] = [];
  for (const path of paths) {
    const handle = await open(path, 'r').catch(() => undefined);
    if (handle) handles.push(handle);
  }
  return { release: async () => { await Promise.all(handles.splice(0).map((h) => h.close().catch(() => {}))); } };
}
