import { randomBytes } from 'node:crypto';
import { copyFile, link, lstat, mkdir, readdir, rename, rm } from 'node:fs/promises';
import { join } from 'node:path';

/** What makes two unpacked files interchangeable: a hard link shares mode, owner and times along with the bytes. */
export interface SharedFileKey {
  sha256: string;
  mode: number;
  uid: number;
  gid: number;
  mtime: Date;
}

export interface PruneResult {
  files: number;
  bytes: number;
}

/**
 * Regular files of unpacked images, kept once per content and metadata and hard-linked into every tree that holds
 * them. Images built from the same base share its Node binary and libraries, so a host with many models (or many
 * versions of one) stores them once. A stored file whose link count is 1 belongs to no tree any more.
 */
export class SharedFiles {
  constructor(readonly dir: string) {}

  /** A fresh name in the store's directory, so the finished file can be linked in without crossing filesystems. */
  async tempPath(): Promise<string> {
    await mkdir(this.dir, { recursive: true });
    return join(this.dir, `.incoming-${randomBytes(8).toString('hex')}`);
  }

  /**
   * Moves the finished `temp` file to `hostPath`, as a link to the stored copy with the same key when there is one;
   * otherwise `temp` becomes the stored copy.
   */
  async place(temp: string, key: SharedFileKey, hostPath: string): Promise<void> {
    const stored = join(this.dir, storedName(key));
    try {
      await link(temp, stored);
    } catch (error) {
      const code = (error as NodeJS.ErrnoException).code;
      if (code !== 'EEXIST') {
        // A store that cannot take links (another filesystem, a link limit) costs space, never the unpack.
        await moveFile(temp, hostPath);
        return;
      }
      await rm(temp, { force: true });
      await link(stored, hostPath);
      return;
    }
    await moveFile(temp, hostPath);
  }

  /** Removes stored files that no unpacked tree links any more. */
  async prune(): Promise<PruneResult> {
    const result: PruneResult = { files: 0, bytes: 0 };
    const names = await readdir(this.dir).catch(() => [] as string[]);
    for (const name of names) {
      const path = join(this.dir, name);
      const info = await lstat(path).catch(() => undefined);
      if (!info?.isFile() || info.nlink > 1) continue;
      // An `.incoming-` file with one link is an unpack in progress (or one that died): leave those to it.
      if (name.startsWith('.incoming-')) continue;
      await rm(path, { force: true });
      result.files += 1;
      result.bytes += info.size;
    }
    return result;
  }
}

function storedName(key: SharedFileKey): string {
  return `${key.sha256}-${(key.mode & 0o7777).toString(8)}-${key.uid}-${key.gid}-${Math.floor(key.mtime.getTime() / 1000)}`;
}

async function moveFile(from: string, to: string): Promise<void> {
  try {
    await rename(from, to);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'EXDEV') throw error;
    await copyFile(from, to);
    await rm(from, { force: true });
  }
}
