import { createReadStream } from 'node:fs';
import { readFile, stat } from 'node:fs/promises';
import { join } from 'node:path';
import type { Readable } from 'node:stream';
import { JSON_DOCUMENT_LIMIT, type BlobAccess } from './blob-access.ts';
import { digestHex } from './digest.ts';

/** Blobs of an OCI image layout directory: `<dir>/blobs/sha256/<hex>`. */
export class LayoutAccess implements BlobAccess {
  constructor(readonly dir: string) {}

  private blobPath(digest: string): string {
    return join(this.dir, 'blobs', 'sha256', digestHex(digest));
  }

  async size(digest: string): Promise<number | undefined> {
    try {
      const info = await stat(this.blobPath(digest));
      return info.isFile() ? info.size : undefined;
    } catch {
      return undefined;
    }
  }

  async open(digest: string): Promise<Readable> {
    const path = this.blobPath(digest);
    if ((await this.size(digest)) === undefined) throw new Error(`blob ${digest} is missing (${path})`);
    return createReadStream(path);
  }

  /** A small file at the layout's root (`index.json`, `oci-layout`). */
  async readRootFile(name: string): Promise<Buffer | undefined> {
    const path = join(this.dir, name);
    try {
      const info = await stat(path);
      if (info.size > JSON_DOCUMENT_LIMIT) throw new Error(`${name} is larger than ${JSON_DOCUMENT_LIMIT} bytes`);
      return await readFile(path);
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
      throw error;
    }
  }

  async close(): Promise<void> {}
}
