import { randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { mkdir, rename, rm, writeFile } from 'node:fs/promises';
import path from 'node:path';

/** A file to scaffold: its text, or `generated` when a generator writes it into the staging directory. */
export interface ScaffoldFile {
  path: string;
  content?: string;
  /** Writes the file (or directory) at the absolute path given. */
  generate?: (out: string) => Promise<void>;
}

/** Paths (relative) among `files` that already exist under `dir`. */
export function existing(dir: string, files: ScaffoldFile[]): string[] {
  return files.map((f) => f.path).filter((p) => existsSync(path.join(dir, p)));
}

/**
 * Writes every file into a staging directory inside `dir` first (generators included), then renames each into
 * place: a failing generator leaves nothing behind, and no existing file is ever replaced (the caller checked).
 */
export async function writeScaffold(dir: string, files: ScaffoldFile[]): Promise<void> {
  const createdDir = !existsSync(dir);
  await mkdir(dir, { recursive: true });
  const staging = path.join(dir, `.pyml-init-${randomBytes(4).toString('hex')}`);
  try {
    for (const f of files) {
      const target = path.join(staging, f.path);
      await mkdir(path.dirname(target), { recursive: true });
      if (f.generate) await f.generate(target);
      else await writeFile(target, f.content ?? '');
    }
    for (const f of files) {
      await mkdir(path.dirname(path.join(dir, f.path)), { recursive: true });
      await rename(path.join(staging, f.path), path.join(dir, f.path));
    }
  } catch (error) {
    if (createdDir) await rm(dir, { recursive: true, force: true });
    throw error;
  } finally {
    await rm(staging, { recursive: true, force: true });
  }
}

/** Quotes a path for a POSIX shell when it needs it (a directory named "My Model"), for printed next steps. */
export function shellQuote(s: string): string {
  return /^[\w@%+=:,./-]+$/.test(s) ? s : `'${s.replaceAll("'", `'\\''`)}'`;
}
