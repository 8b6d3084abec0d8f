import { createHash } from 'node:crypto';
import { constants } from 'node:fs';
import { open } from 'node:fs/promises';

/** What a regular file gets once its bytes are written: all set through its descriptor, never by path. */
export interface FileMetadata {
  /** Permission bits, special bits already removed. */
  mode: number;
  mtime: Date;
  /** Set only when running as root. */
  owner?: { uid: number; gid: number };
}

/**
 * Creates `path` (O_EXCL|O_NOFOLLOW: never through a link someone slipped in), copies an entry's bytes into it,
 * sets owner, mode and times on the open descriptor, and returns the bytes' sha256. Iterates the entry rather than
 * using Node's pipeline, which does not notice when a tar-stream (streamx) entry is destroyed mid-way.
 */
export async function writeEntryFile(entry: AsyncIterable<unknown>, path: string, metadata: FileMetadata): Promise<string> {
  // Opened before any byte is read, so the file exists by the time a failure's cleanup runs.
  const handle = await open(path, constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL | constants.O_NOFOLLOW, 0o600);
  const hash = createHash('sha256');
  try {
    // Written on the descriptor itself (a write stream over a FileHandle holds it until destroyed).
    let position = 0;
    for await (const chunk of entry) {
      const bytes = chunk as Buffer;
      hash.update(bytes);
      for (let offset = 0; offset < bytes.length;) {
        const { bytesWritten } = await handle.write(bytes, offset, bytes.length - offset, position);
        offset += bytesWritten;
        position += bytesWritten;
      }
    }
    // chown before chmod: chown clears setuid/setgid bits (none are kept, but the order stays right).
    if (metadata.owner) await handle.chown(metadata.owner.uid, metadata.owner.gid);
    await handle.chmod(metadata.mode);
    await handle.utimes(metadata.mtime, metadata.mtime);
    return hash.digest('hex');
  } finally {
    await handle.close();
  }
}
