import { lstat, readdir, rename, rm, stat } from 'node:fs/promises';
import { join } from 'node:path';

/**
 * Refuses a target that is not an image layout already: a file, or a directory of someone's files. Writing an image
 * swaps the whole target for the new layout, so anything else there would be lost. Nothing there, an empty
 * directory, or a directory with an `oci-layout` file (an earlier image) may be replaced.
 */
export async function refuseToReplaceNonLayout(dir: string): Promise<void> {
  const info = await lstat(dir).catch(() => undefined);
  if (!info) return;
  if (!info.isDirectory()) {
    throw new Error(`${dir} exists and is not a directory; refusing to replace it with an image layout (it would be lost)`);
  }
  if ((await readdir(dir)).length === 0) return;
  if (!(await stat(join(dir, 'oci-layout')).then((s) => s.isFile(), () => false))) {
    throw new Error(`${dir} holds files and is not an OCI image layout (no oci-layout file); refusing to replace it (its files would be lost)`);
  }
}

/** Moves the complete directory `from` to `to`, replacing what was there only once `from` is in place. */
export async function replaceDirectory(from: string, to: string): Promise<void> {
  await refuseToReplaceNonLayout(to);
  const old = `${from}.old`;
  const hadOld = await rename(to, old).then(() => true, (error: NodeJS.ErrnoException) => {
    if (error.code === 'ENOENT') return false;
    throw error;
  });
  try {
    await rename(from, to);
  } catch (error) {
    if (hadOld) await rename(old, to); // put the old image back
    throw error;
  }
  if (hadOld) await rm(old, { recursive: true, force: true });
}
