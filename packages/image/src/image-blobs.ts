import { Readable } from 'node:stream';
import type { Image } from './image.ts';

/** One blob an image is made of, and how to read it. */
export interface ImageBlob {
  digest: string;
  size: number;
  /** The config and the manifest are in memory; a layer opens its own bytes. */
  bytes?: Buffer;
  open(): Promise<Readable>;
}

/** Every blob of an image once, in a fixed order: config, layers bottom to top, manifest. */
export function imageBlobs(image: Image): ImageBlob[] {
  const inMemory = (digest: string, bytes: Buffer): ImageBlob => ({ digest, size: bytes.length, bytes, open: async () => Readable.from([bytes]) });
  const blobs = [
    inMemory(image.manifest.config.digest, image.configBytes),
    ...image.layers.map((layer): ImageBlob => ({ digest: layer.digest, size: layer.size, open: () => layer.openBlob() })),
    inMemory(image.manifestDigest, image.manifestBytes),
  ];
  return [...new Map(blobs.map((blob) => [blob.digest, blob])).values()];
}
