import { mkdtemp, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { openImage, type OpenedImage } from '@pyml/image';
import { parsePlatform, pullImage, type PullOptions } from './pull-image.ts';
import { DOCKER_DAEMON_PREFIX, looksLikeRegistryRef } from './reference.ts';

/**
 * Opens an image wherever it is: a layout directory or tarball (as @pyml/image's openImage), an engine's
 * image (`docker-daemon:NAME:TAG`), or a registry's (`HOST/REPO:TAG`, `docker://…`). Remote images are copied
 * to a temp directory first, which `close()` removes.
 */
export async function openAnyImage(ref: string, options: PullOptions = {}): Promise<OpenedImage> {
  if (ref.startsWith(DOCKER_DAEMON_PREFIX)) {
    const name = ref.slice(DOCKER_DAEMON_PREFIX.length);
    if (!name) throw new Error(`${ref}: name an image, e.g. docker-daemon:iris:1.0.0`);
    // dockerode is loaded only for engine refs: it is slow to import and most refs are files or registries.
    const { saveFromEngine } = await import('./docker-engine.ts');
    const saved = await saveFromEngine(name);
    return wrap(ref, saved.file, saved.dir);
  }
  const isLocal = await stat(ref).then(() => true, () => false);
  if (!isLocal && looksLikeRegistryRef(ref)) {
    const dir = await mkdtemp(join(tmpdir(), 'pyml-pull-'));
    try {
      await pullImage(ref, join(dir, 'layout'), options);
    } catch (error) {
      await rm(dir, { recursive: true, force: true });
      throw error;
    }
    return wrap(ref, join(dir, 'layout'), dir);
  }
  return openImage(ref, options.platform ? { platform: parsePlatform(options.platform) } : {});
}

async function wrap(ref: string, path: string, tempDir: string): Promise<OpenedImage> {
  let source: OpenedImage;
  try {
    source = await openImage(path);
  } catch (error) {
    await rm(tempDir, { recursive: true, force: true });
    throw new Error((error as Error).message.replace(path, ref));
  }
  return {
    ...source,
    ref,
    close: async () => {
      await source.close();
      await rm(tempDir, { recursive: true, force: true });
    },
  };
}
