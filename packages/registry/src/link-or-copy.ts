import { copyFile, link } from 'node:fs/promises';

/** A hard link where the two paths share a filesystem (no bytes copied), a copy where they do not. */
export async function linkOrCopy(from: string, to: string): Promise<void> {
  try {
    await link(from, to);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'EXDEV') throw error;
    await copyFile(from, to);
  }
}
