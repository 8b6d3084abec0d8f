import { stat } from 'node:fs/promises';
import { EXIT, PymlError } from '@pyml/errors';
import { DOCKER_DAEMON_PREFIX, looksLikeRegistryRef } from '@pyml/registry/reference';
import { checkImageRef } from './check-image.ts';
import { namedImageLayout, parseNamedImage } from './named-image.ts';
import { showProgress } from './output.ts';
import { Progress } from './progress.ts';

/**
 * The commands that run images take layouts, tarballs, registry refs and engine images (`docker-daemon:NAME:TAG`)
 * alike: the last two are put into the cache first (see cached-pull.ts), with progress on a terminal, and `told`
 * hears one line for each. Anything else is passed on as it is (the command names a path that is not there).
 */
export async function localImagePaths(given: string[], options: { json: boolean; told?: (message: string) => void }): Promise<string[]> {
  const progress = new Progress(showProgress({ json: options.json }));
  const paths: string[] = [];
  // NAME@VERSION / NAME:VERSION of a cached image (pyml images), unless a file of that name is here.
  const refs = await Promise.all(given.map(async (ref) => (parseNamedImage(ref) && !(await stat(ref).then(() => true, () => false)) ? (await namedImageLayout(ref)) ?? ref : ref)));
  for (const ref of refs) await checkImageRef(ref);
  try {
    for (const ref of refs) {
      if (ref.startsWith(DOCKER_DAEMON_PREFIX)) {
        const { saveEngineImageIntoCache } = await import('@pyml/registry/cached-pull');
        progress.step(`saving ${ref} from the engine`);
        let saved;
        try {
          saved = await saveEngineImageIntoCache(ref.slice(DOCKER_DAEMON_PREFIX.length));
        } catch (error) {
          throw new PymlError(`cannot read ${ref}: ${(error as Error).message}`, EXIT.failure, 'an engine image is docker-daemon:NAME:TAG, from the engine at DOCKER_HOST');
        }
        options.told?.(`saved ${ref} (${saved.digest}) from the engine`);
        paths.push(saved.path);
        continue;
      }
      if ((await stat(ref).then(() => true, () => false)) || !looksLikeRegistryRef(ref)) {
        paths.push(ref);
        continue;
      }
      // The registry client is loaded only for a registry ref: most runs never need it.
      const { pullIntoCache } = await import('@pyml/registry/cached-pull');
      let pulled;
      try {
        pulled = await pullIntoCache(ref, { log: (m) => progress.step(m), onProgress: (what, bytes, total) => progress.bytesDone(what, bytes, total) });
      } catch (error) {
        const message = (error as Error).message;
        throw new PymlError(message.includes(ref) ? message : `cannot pull ${ref}: ${message}`, EXIT.failure, 'a registry image is HOST[:PORT]/REPOSITORY:TAG (credentials as for pyml push); a local one is a layout directory or a tarball');
      }
      options.told?.(`pulled ${ref} (${pulled.digest}): ${pulled.downloaded} blobs downloaded, ${pulled.reused} from the cache`);
      paths.push(pulled.path);
    }
  } finally {
    progress.clear();
  }
  return paths;
}
