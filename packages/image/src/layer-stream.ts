import { pipeline, type Readable } from 'node:stream';
import { createGunzip } from 'node:zlib';
import { VerifyingStream } from './digest.ts';
import {
  MEDIA_TYPE_DOCKER_LAYER_GZIP, MEDIA_TYPE_LAYER_TAR, MEDIA_TYPE_LAYER_TAR_GZIP, type OciDescriptor,
} from './oci.ts';

const UNCOMPRESSED = new Set([MEDIA_TYPE_LAYER_TAR, 'application/vnd.docker.image.rootfs.diff.tar']);
const GZIPPED = new Set([MEDIA_TYPE_LAYER_TAR_GZIP, MEDIA_TYPE_DOCKER_LAYER_GZIP]);

/**
 * A layer's uncompressed tar, from its verified blob stream, checked against `diffId` as it flows. The returned
 * stream errors (instead of ending) when either digest does not match, so a consumer that reaches the end
 * has read exactly the bytes the image promised.
 */
export function uncompressedLayer(blob: Readable, descriptor: OciDescriptor, diffId: string, what: string): Readable {
  const check = new VerifyingStream(diffId, `${what}: uncompressed content (diffId)`);
  const stages: NodeJS.ReadWriteStream[] = [];
  // zlib's default 16 KiB output chunks cost a callback, a tar parse step and a write each: 256 KiB halves unpack time.
  if (GZIPPED.has(descriptor.mediaType)) stages.push(createGunzip({ chunkSize: 256 * 1024 }));
  else if (!UNCOMPRESSED.has(descriptor.mediaType)) {
    throw new Error(`${what}: unsupported layer media type ${descriptor.mediaType} (only tar and tar+gzip)`);
  }
  // pipeline destroys every stage with the first error, so it reaches whoever reads `check`.
  pipeline(blob, ...(stages as []), check, () => {});
  return check;
}
