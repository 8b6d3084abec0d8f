import type { Readable } from 'node:stream';

/** What a layer is, as a manifest and a config name it: the facts a blob store's index remembers too. */
export interface LayerRecord {
  /** OCI or Docker layer media type: tar, or tar+gzip. */
  mediaType: string;
  /** Digest of the blob as stored (compressed, if gzip). */
  digest: string;
  /** Digest of the uncompressed tar, as the image config's rootfs lists it. */
  diffId: string;
  /** Size of the blob as stored. */
  size: number;
  annotations: Record<string, string>;
}

/**
 * One layer of an image, built or read: an immutable value that opens its own bytes on demand, so a writer needs
 * nothing but the layer (as go-containerregistry's v1.Layer).
 */
export interface Layer extends LayerRecord {
  /** The blob as stored (what `digest` names). A layer read from an image errors at the end if the bytes do not match. */
  openBlob(): Promise<Readable>;
  /** The uncompressed tar (what `diffId` names), checked against diffId as it flows. */
  openTar(): Promise<Readable>;
}

/** The facts of a layer without its openers: what a store's index keeps and a JSON report shows. */
export function layerRecord(layer: LayerRecord): LayerRecord {
  const { mediaType, digest, diffId, size, annotations } = layer;
  return { mediaType, digest, diffId, size, annotations };
}
