import type { Readable } from 'node:stream';

/**
 * Raw, unverified access to the blobs of one stored image (a layout directory or a tarball). openImage
 * wraps it with digest checks; nothing else should read through it.
 */
export interface BlobAccess {
  /** Undefined when the blob is absent. */
  size(digest: string): Promise<number | undefined>;
  open(digest: string): Promise<Readable>;
  close(): Promise<void>;
}

/** Reads a whole small stream, refusing more than `limit` bytes (manifests, configs, index files). */
export async function readLimited(stream: AsyncIterable<unknown>, limit: number, what: string): Promise<Buffer> {
  const chunks: Buffer[] = [];
  let total = 0;
  for await (const chunk of stream) {
    total += (chunk as Buffer).length;
    if (total > limit) {
      (stream as Partial<Readable>).destroy?.();
      throw new Error(`${what} is larger than ${limit} bytes`);
    }
    chunks.push(chunk as Buffer);
  }
  return Buffer.concat(chunks);
}

/** Manifests, configs and index files are small; anything bigger is not one (or is an attack). */
export const JSON_DOCUMENT_LIMIT = 8 * 1024 * 1024;
