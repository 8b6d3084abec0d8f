import { realpath, stat } from 'node:fs/promises';
import { posix } from 'node:path';

/** A file or directory to put in a layer. Exactly one of source/content/linkTarget/directory. */
export interface FileEntry {
  /** Absolute path in the image. */
  path: string;
  /** Host file, streamed into the layer. */
  source?: string;
  content?: string | Uint8Array;
  /** Makes the entry a symlink to this target. */
  linkTarget?: string;
  directory?: true;
  /** Only its exec bits matter for files: layers carry normalised modes. */
  mode?: number;
}

/** An entry as it will be written: tar name, normalised mode, known size. */
export type PlannedEntry =
  | { kind: 'directory'; name: string; imagePath: string; mode: 0o755 | 0o1777 }
  | { kind: 'symlink'; name: string; imagePath: string; mode: 0o777; linkTarget: string }
  | { kind: 'file'; name: string; imagePath: string; mode: 0o755 | 0o644; size: number; content: Buffer }
  | {
      kind: 'file'; name: string; imagePath: string; mode: 0o755 | 0o644; size: number;
      source: string; realSource: string; mtimeMs: number; ino: number;
    };

const EXEC_BITS = 0o111;

/** Normalises an image path; refuses relative paths, `..` and the root itself. */
export function normaliseImagePath(path: string): string {
  if (typeof path !== 'string' || !path.startsWith('/')) {
    throw new Error(`layer entry path must be absolute in the image: ${JSON.stringify(path)}`);
  }
  if (path.split('/').includes('..')) throw new Error(`layer entry path must not contain "..": ${path}`);
  if (path.includes('\0')) throw new Error(`layer entry path contains a NUL byte: ${JSON.stringify(path)}`);
  const normal = posix.normalize(path).replace(/\/+$/, '');
  if (normal === '') throw new Error('layer entry path must not be the root directory "/"');
  return normal;
}

/**
 * Validates entries, stats sources, adds missing parent directories and sorts by path, byte-wise, so the
 * resulting tar depends only on the entries' image paths and contents, never on the order given or the host.
 */
export async function planEntries(entries: FileEntry[]): Promise<PlannedEntry[]> {
  const byPath = new Map<string, PlannedEntry>();
  for (const entry of entries) {
    const planned = await planEntry(entry);
    if (byPath.has(planned.imagePath)) throw new Error(`layer has two entries for ${planned.imagePath}`);
    byPath.set(planned.imagePath, planned);
  }
  for (const imagePath of [...byPath.keys()]) {
    for (let parent = posix.dirname(imagePath); parent !== '/'; parent = posix.dirname(parent)) {
      const existing = byPath.get(parent);
      if (existing === undefined) {
        byPath.set(parent, { kind: 'directory', name: tarName(parent, 'directory'), imagePath: parent, mode: 0o755 });
      } else if (existing.kind !== 'directory') {
        throw new Error(`layer entry ${imagePath} is below ${parent}, which is a ${existing.kind}, not a directory`);
      }
    }
  }
  return [...byPath.values()].sort((a, b) => compareBytes(a.imagePath, b.imagePath));
}

async function planEntry(entry: FileEntry): Promise<PlannedEntry> {
  const imagePath = normaliseImagePath(entry.path);
  const given = [entry.source, entry.content, entry.linkTarget, entry.directory].filter((x) => x !== undefined);
  if (given.length !== 1) {
    throw new Error(`layer entry ${imagePath} must have exactly one of source, content, linkTarget, directory`);
  }
  // Directories are 0755, except a shared scratch directory (/tmp) that asks for the sticky world-writable 1777.
  if (entry.directory) return { kind: 'directory', name: tarName(imagePath, 'directory'), imagePath, mode: entry.mode === 0o1777 ? 0o1777 : 0o755 };
  if (entry.linkTarget !== undefined) {
    if (entry.linkTarget === '') throw new Error(`layer entry ${imagePath}: empty symlink target`);
    return { kind: 'symlink', name: tarName(imagePath, 'symlink'), imagePath, mode: 0o777, linkTarget: entry.linkTarget };
  }
  if (entry.content !== undefined) {
    const content = typeof entry.content === 'string' ? Buffer.from(entry.content, 'utf8') : Buffer.from(entry.content);
    const mode = (entry.mode ?? 0) & EXEC_BITS ? 0o755 : 0o644;
    return { kind: 'file', name: tarName(imagePath, 'file'), imagePath, mode, size: content.length, content };
  }
  const source = entry.source!;
  let realSource: string;
  let info;
  try {
    realSource = await realpath(source);
    info = await stat(realSource);
  } catch (error) {
    throw new Error(`layer entry ${imagePath}: cannot read source ${source}: ${(error as Error).message}`);
  }
  if (!info.isFile()) throw new Error(`layer entry ${imagePath}: source ${source} is not a regular file`);
  const mode = ((entry.mode ?? 0) | info.mode) & EXEC_BITS ? 0o755 : 0o644;
  return {
    kind: 'file', name: tarName(imagePath, 'file'), imagePath, mode, size: info.size,
    source, realSource, mtimeMs: info.mtimeMs, ino: info.ino,
  };
}

/** Tar names are relative; directories end in "/" as GNU tar and Docker write them. */
function tarName(imagePath: string, kind: PlannedEntry['kind']): string {
  const relative = imagePath.slice(1);
  return kind === 'directory' ? relative + '/' : relative;
}

/** Byte-wise (code unit) order, independent of locale. */
function compareBytes(a: string, b: string): number {
  const x = Buffer.from(a);
  const y = Buffer.from(b);
  return Buffer.compare(x, y);
}
