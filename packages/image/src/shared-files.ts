import { randomBytes } from 'node:crypto';
import { copyFile, link, lstat, mkdir, readdir, readFile, rename, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { ownedPrefix, removeDeadRunsLeftovers } from './dead-runs-leftovers.ts';

/** What makes two unpacked files interchangeable: a hard link shares mode, owner and times along with the bytes. */
export interface SharedFileKey {
  sha256: string;
  mode: number;
  uid: number;
  gid: number;
  mtime: Date;
}

/**
 * One tar entry of a layer as unpacked with the store: its header's fields, and for a regular file the stored copy
 * that holds its bytes. A layer's entries, in order, rebuild it without its blob.
 */
export interface RecordedEntry {
  name: string;
  type: string;
  mode: number;
  uid: number;
  gid: number;
  /** Milliseconds since the epoch. */
  mtime: number;
  linkname?: string;
  stored?: string;
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
    return join(this.dir, `${INCOMING}${ownedPrefix('')}${randomBytes(8).toString('hex')}`);
  }

  /**
   * Moves the finished `temp` file to `hostPath`, as a link to the stored copy with the same key when there is one;
   * otherwise `temp` becomes the stored copy. Returns the stored copy's name, or undefined when the store could not
   * take it.
   */
  async place(temp: string, key: SharedFileKey, hostPath: string): Promise<string | undefined> {
    const name = storedName(key);
    const stored = join(this.dir, name);
    try {
      await link(temp, stored);
    } catch (error) {
      const code = (error as NodeJS.ErrnoException).code;
      if (code !== 'EEXIST') {
        // A store that cannot take links (another filesystem, a link limit) costs space, never the unpack.
        await moveFile(temp, hostPath);
        return undefined;
      }
      if (await intact(stored, name)) {
        await rm(temp, { force: true });
      } else {
        // The stored copy was changed in place: this fresh one takes its name (trees that link the old keep theirs).
        await rename(temp, stored);
      }
      await link(stored, hostPath);
      return name;
    }
    await moveFile(temp, hostPath);
    return name;
  }

  /** Links a stored copy in at `hostPath` (a replayed layer's file). */
  async linkStored(name: string, hostPath: string): Promise<void> {
    if (name.includes('/') || name.startsWith('.') || !usableName(name)) throw new Error(`stored file name ${JSON.stringify(name)} refused`);
    await link(join(this.dir, name), hostPath);
  }

  /** Remembers how the layer with this diffId unpacked, so the next image that has it needs no blob for it. */
  async recordLayer(diffId: string, entries: RecordedEntry[]): Promise<void> {
    const file = this.layerRecord(diffId);
    await mkdir(join(this.dir, LAYERS), { recursive: true });
    const temp = `${file}.${randomBytes(6).toString('hex')}.tmp`;
    await writeFile(temp, JSON.stringify(entries));
    await rename(temp, file);
  }

  /** A layer's recorded entries, or undefined when it was never recorded or a stored file it needs is gone. */
  async recordedLayer(diffId: string): Promise<RecordedEntry[] | undefined> {
    const text = await readFile(this.layerRecord(diffId), 'utf8').catch(() => undefined);
    if (text === undefined) return undefined;
    let entries: RecordedEntry[];
    try {
      entries = JSON.parse(text) as RecordedEntry[];
    } catch {
      return undefined;
    }
    if (!Array.isArray(entries)) return undefined;
    for (const entry of entries) {
      if (entry === null || typeof entry !== 'object' || typeof entry.name !== 'string') return undefined;
      if (entry.stored === undefined) continue;
      // A copy stored with a setuid/setgid/sticky bit (by an unpack before they were dropped) is never linked again.
      if (typeof entry.stored !== 'string' || !usableName(entry.stored)) return undefined;
      if (!(await intact(join(this.dir, entry.stored), entry.stored))) return undefined;
    }
    return entries;
  }

  private layerRecord(diffId: string): string {
    if (!/^[a-z0-9]+:[a-f0-9]{32,}$/.test(diffId)) throw new Error(`layer diffId ${JSON.stringify(diffId)} is not a digest`);
    return join(this.dir, LAYERS, `${diffId.replace(':', '-')}.json`);
  }

  /** Removes stored files that no unpacked tree links any more. */
  async prune(): Promise<PruneResult> {
    const result: PruneResult = { files: 0, bytes: 0 };
    // Files an unpack that was killed was writing (named by its pid); a live unpack's stay.
    await removeDeadRunsLeftovers(this.dir, INCOMING);
    const names = await readdir(this.dir).catch(() => [] as string[]);
    for (const name of names) {
      const path = join(this.dir, name);
      const info = await lstat(path).catch(() => undefined);
      if (!info?.isFile() || info.nlink > 1) continue;
      // An incoming file with one link is an unpack in progress: leave it to it.
      if (name.startsWith(INCOMING)) continue;
      await rm(path, { force: true });
      result.files += 1;
      result.bytes += info.size;
    }
    // A layer record that needs a file just removed would only be refused at its next use.
    const records = join(this.dir, LAYERS);
    for (const name of await readdir(records).catch(() => [] as string[])) {
      if (!name.endsWith('.json')) continue;
      const usable = await this.recordedLayer(name.slice(0, -'.json'.length).replace('-', ':')).catch(() => undefined);
      if (!usable) await rm(join(records, name), { force: true });
    }
    return result;
  }
}

/** The name prefix of a file being written into the store, before `<pid>-`. */
const INCOMING = '.incoming-';

/** Where layer records live, inside the store (a directory, so prune's walk over files passes it by). */
const LAYERS = '.layers';

/** The stored copy's name; `key.mode` is the mode the tree gets (unpack drops special bits before it gets here). */
function storedName(key: SharedFileKey): string {
  return `${key.sha256}-${(key.mode & 0o7777).toString(8)}-${key.uid}-${key.gid}-${Math.floor(key.mtime.getTime() / 1000)}`;
}

const STORED_NAME = /^[0-9a-f]{64}-([0-7]+)-(\d+)-(\d+)-(-?\d+)$/;

/** A well-formed stored name whose mode has no setuid, setgid or sticky bit. */
function usableName(name: string): boolean {
  const key = STORED_NAME.exec(name);
  return key !== null && (parseInt(key[1], 8) & 0o7000) === 0;
}

/**
 * Whether the stored copy at `path` still is what its name says. Its trees are hard links to it: a process that
 * wrote into its own tree's file in place (which sets the mtime to now) or chmod-ed it changed the copy for every
 * tree, and such a copy is not handed out again.
 */
async function intact(path: string, name: string): Promise<boolean> {
  const info = await lstat(path).catch(() => undefined);
  const key = STORED_NAME.exec(name);
  if (!info?.isFile() || !key) return false;
  return (info.mode & 0o7777) === parseInt(key[1], 8) && info.uid === Number(key[2]) && info.gid === Number(key[3])
    && Math.floor(info.mtimeMs / 1000) === Number(key[4]);
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
