import { createReadStream } from 'node:fs';
import { stat } from 'node:fs/promises';
import { finished } from 'node:stream/promises';
import type { Readable } from 'node:stream';
import { imageTarball, openImage } from '@pyml/image';

/**
 * The image as one tar a Docker engine can `load`: a tarball ref is sent as it is (pyml writes OCI layout +
 * docker-archive in one tar); any other image is streamed by the image package's tarball writer, so nothing is
 * copied to disk. The image stays open until its tar has been read or dropped.
 */
export async function imageTarStream(ref: string, repoTags: string[] = []): Promise<Readable> {
  if ((await stat(ref)).isFile()) return createReadStream(ref);
  const image = await openImage(ref);
  const tar = imageTarball(image, { repoTags });
  void finished(tar).catch(() => {}).finally(() => image.close());
  return tar;
}
