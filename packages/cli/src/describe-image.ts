import type { OpenedImage } from '@pyml/image';
import { openAnyImage } from '@pyml/registry/open-any-image';
import { parsePlatform } from '@pyml/registry/pull-image';
import { EXIT, PymlError } from '@pyml/errors';
import { checkImageRef } from './check-image.ts';

// What an image is and how two differ belong to the image format; the CLI only opens the image.
export { describeImage, type ImageDescription, type ImagePart } from '@pyml/image/pyml-format';

export async function withImage<T>(ref: string, fn: (source: OpenedImage) => Promise<T>, options: { platform?: string } = {}): Promise<T> {
  if (options.platform !== undefined) {
    try {
      parsePlatform(options.platform);
    } catch (error) {
      throw new PymlError(`--platform: ${(error as Error).message}`, EXIT.usage);
    }
  }
  await checkImageRef(ref);
  let source: OpenedImage;
  try {
    source = await openAnyImage(ref, options);
  } catch (err) {
    if (err instanceof PymlError) throw err;
    throw new PymlError(`cannot open image ${ref}: ${(err as Error).message}`, EXIT.failure, 'REF is an OCI layout directory, an image tarball, HOST/REPO:TAG in a registry, or docker-daemon:NAME:TAG');
  }
  try {
    return await fn(source);
  } finally {
    await source.close();
  }
}
