import { chmodSync, lstatSync, mkdirSync, unlinkSync } from 'node:fs';
import { dirname } from 'node:path';

/**
 * Binds a Unix socket only its owner may open (mode 0600, in a directory made 0700 when it is new), as both of the
 * model server's sockets are (gRPC, and pyml serve's frames): `listen` binds it while the umask makes it owner-only
 * from the moment it exists; the chmod states it for the record. A socket file left by a previous run is removed
 * first (bind would fail on it); anything else at that path is left alone.
 */
export async function listenPrivately<T>(socket: string, listen: () => Promise<T>): Promise<T> {
  mkdirSync(dirname(socket), { recursive: true, mode: 0o700 });
  removeStaleSocket(socket);
  const umask = process.umask(0o177);
  let bound: T;
  try {
    bound = await listen();
  } finally {
    process.umask(umask);
  }
  chmodSync(socket, 0o600);
  return bound;
}

function removeStaleSocket(path: string): void {
  try {
    if (lstatSync(path).isSocket()) unlinkSync(path);
  } catch {
    // Nothing there.
  }
}
