import { readdir, readlink } from 'node:fs/promises';
import { join, sep } from 'node:path';

/**
 * Which of `dirs` running processes use, read from /proc: a process uses a directory when its executable, working
 * directory, root or any open file lies inside it. A model process runs its image's own loader from the unpacked
 * tree, and `pyml serve` keeps each tree it serves open, so neither loses its files to a prune. Processes of other
 * users cannot be read and are not counted (their caches are their own).
 */
export async function processesUsing(dirs: string[]): Promise<Map<string, number[]>> {
  const users = new Map<string, number[]>();
  if (dirs.length === 0) return users;
  const pids = (await readdir('/proc').catch(() => [] as string[])).filter((name) => /^\d+$/.test(name));
  for (const pid of pids) {
    for (const target of await pathsOf(join('/proc', pid))) {
      const dir = dirs.find((d) => target === d || target.startsWith(d + sep));
      if (dir === undefined) continue;
      const list = users.get(dir) ?? [];
      if (!list.includes(Number(pid))) list.push(Number(pid));
      users.set(dir, list);
    }
  }
  return users;
}

async function pathsOf(procDir: string): Promise<string[]> {
  const links = ['exe', 'cwd', 'root'].map((name) => join(procDir, name));
  const fds = await readdir(join(procDir, 'fd')).catch(() => [] as string[]);
  links.push(...fds.map((fd) => join(procDir, 'fd', fd)));
  const targets = await Promise.all(links.map((link) => readlink(link).catch(() => undefined)));
  // A deleted file reads as "PATH (deleted)": still inside the tree, so still a use.
  return targets.filter((t): t is string => t !== undefined && t.startsWith('/')).map((t) => t.replace(/ \(deleted\)$/, ''));
}
