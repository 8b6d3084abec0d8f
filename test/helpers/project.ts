import { cp, mkdtemp, readFile, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { REPO } from './cli.ts';

/**
 * Copies an example project into a fresh temp directory (with node_modules linked to the repo's, as an installed
 * project would have), so a test can change it freely.
 */
export async function copyExample(name: string, prefix = 'pyml-project-'): Promise<string> {
  const dir = await mkdtemp(path.join(tmpdir(), prefix));
  await cp(path.join(REPO, 'examples', name), dir, { recursive: true, filter: (src) => !src.includes(`${path.sep}.pyml`) });
  await symlink(path.join(REPO, 'node_modules'), path.join(dir, 'node_modules'));
  return dir;
}

export async function editFile(file: string, edit: (text: string) => string): Promise<void> {
  await writeFile(file, edit(await readFile(file, 'utf8')));
}

export async function tempDir(prefix = 'pyml-test-'): Promise<string> {
  return mkdtemp(path.join(tmpdir(), prefix));
}
