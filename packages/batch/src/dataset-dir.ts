import { lstat, readdir, rename, rm, stat } from 'node:fs/promises';
import { join } from 'node:path';

/** Files a Parquet dataset holds: data files, and the markers and checksums Spark and Hadoop write beside them. */
const DATASET_FILE = /(\.parquet|\.crc)$|^_SUCCESS$|^_(committed|started)_/;
/** A Hive partition directory: `column=value`. */
const PARTITION_DIR = /^[^=]+=.*$/;

/**
 * Refuses an `--out` that is not a Parquet dataset already: a file, or a directory holding anything else. The new
 * dataset replaces the whole directory, so someone's other files there would be lost. Nothing there, an empty
 * directory, or a dataset (Parquet files, Hive `column=value` directories) may be replaced.
 */
export async function refuseToReplaceNonDataset(dir: string): Promise<void> {
  const info = await lstat(dir).catch(() => undefined);
  if (!info) return;
  if (!info.isDirectory()) throw new Error(`--out ${dir} exists and is not a directory; refusing to replace it with a Parquet dataset (it would be lost)`);
  const stranger = await firstStranger(dir, '');
  if (stranger !== undefined) {
    throw new Error(`--out ${dir} is not a Parquet dataset (it holds ${stranger}); refusing to replace it (its files would be lost)`);
  }
}

/** The first entry under `dir` that a Parquet dataset would not hold, as a path relative to the target. */
async function firstStranger(dir: string, rel: string): Promise<string | undefined> {
  for (const entry of await readdir(join(dir, rel), { withFileTypes: true })) {
    const path = rel ? `${rel}/${entry.name}` : entry.name;
    if (entry.isDirectory() && PARTITION_DIR.test(entry.name)) {
      const inner = await firstStranger(dir, path);
      if (inner !== undefined) return inner;
    } else if (!entry.isFile() || !DATASET_FILE.test(entry.name)) {
      return entry.isDirectory() ? `${path}/` : path;
    }
  }
  return undefined;
}

/**
 * The finished dataset `temp` takes `dir`'s name; an earlier dataset there is moved aside first and deleted after,
 * so readers see either the old dataset or the new one, never a half-written one.
 */
export async function publishDataset(temp: string, dir: string): Promise<void> {
  await refuseToReplaceNonDataset(dir);
  const previous = await stat(dir).then(() => true, () => false);
  const aside = `${temp}.old`;
  if (previous) await rename(dir, aside);
  try {
    await rename(temp, dir);
  } catch (error) {
    if (previous) await rename(aside, dir);
    throw error;
  }
  if (previous) await rm(aside, { recursive: true, force: true });
}
