/**
 * What the build reads from an ONNX file (its interface, opsets, operators), remembered per file: a rebuild whose
 * weights did not change reads one small JSON file instead of walking the model, and does not load the reader
 * (protobufjs and its schema, about a tenth of a second of a rebuild's start-up) at all. A small model is also
 * remembered by its bytes, so a copy of it in a new project is not read again either.
 */
import { createHash } from 'node:crypto';
import { mkdir, readFile, realpath, rename, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { OnnxModelInfo } from './onnx-reader.ts';
import { smallFileDigest } from './small-file-digest.ts';

// The reader module beside this one, with this module's extension (.ts in pyml's checkout, .js installed).
const READER_FILE = fileURLToPath(new URL(`./onnx-reader${import.meta.url.endsWith('.ts') ? '.ts' : '.js'}`, import.meta.url));

/** readOnnxModel, loading the reader only when a model is actually read. */
export async function readOnnxModel(path: string, displayPath = path): Promise<OnnxModelInfo> {
  const reader = await import('./onnx-reader.ts');
  return reader.readOnnxModel(path, displayPath);
}

/** size, mtime and inode: any edit or replacement of a file changes one of them. */
async function stampOf(file: string): Promise<string> {
  const s = await stat(file);
  return `${s.size}:${s.mtimeMs}:${s.ino}`;
}

/**
 * The model's info, from `cacheDir` while the file (by real path, size, mtime and inode) and the reader's own
 * source are unchanged; read and remembered otherwise. Without `cacheDir`, always read.
 */
export async function cachedOnnxModelInfo(path: string, displayPath: string, cacheDir?: string): Promise<OnnxModelInfo> {
  if (!cacheDir) return readOnnxModel(path, displayPath);
  let key: string;
  try {
    key = createHash('sha256').update(JSON.stringify([await realpath(path), await stampOf(path), await stampOf(READER_FILE)])).digest('hex').slice(0, 32);
  } catch {
    return readOnnxModel(path, displayPath); // the reader names a missing or unreadable file properly
  }
  const entries = [join(cacheDir, 'onnx-model-info', `${key}.json`)];
  const byIdentity = await remembered(entries[0]!);
  if (byIdentity) return { ...byIdentity, path };
  // The same bytes at another path (a copy of the model in a new project) were read before.
  const digest = await smallFileDigest(path).catch(() => undefined);
  if (digest) entries.push(join(cacheDir, 'onnx-model-info', `sha256-${createHash('sha256').update(`${digest}\0${await stampOf(READER_FILE)}`).digest('hex').slice(0, 32)}.json`));
  const byContent = entries[1] ? await remembered(entries[1]) : undefined;
  const info = byContent ? { ...byContent, path } : await readOnnxModel(path, displayPath);
  await mkdir(join(cacheDir, 'onnx-model-info'), { recursive: true }).catch(() => {});
  for (const entry of entries) await remember(entry, info);
  return info;
}

async function remembered(entry: string): Promise<OnnxModelInfo | undefined> {
  const info = await readFile(entry, 'utf8').then((text) => JSON.parse(text) as OnnxModelInfo, () => undefined);
  return info?.outputs ? info : undefined;
}

async function remember(entry: string, info: OnnxModelInfo): Promise<void> {
  try {
    // A temp name then rename: a concurrent build reads the whole entry or none.
    const temp = `${entry}.${process.pid}.tmp`;
    await writeFile(temp, JSON.stringify(info));
    await rename(temp, entry);
  } catch {
    // A read-only cache only costs the next build this read again.
  }
}
