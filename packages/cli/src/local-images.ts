import { stat } from 'node:fs/promises';
import { EXIT, PymlError } from '@pyml/core/errors';
import { showProgress } from './output.ts';
import { Progress } from './progress.ts';

/**
 * The commands that run images take layouts, tarballs and registry refs alike: registry images are pulled into
 * the cache first (see localImage), with progress on a terminal, and `told` hears one line per pull.
 */
export async function localImagePaths(refs: string[], options: { json: boolean; told?: (message: string) => void }): Promise<string[]> {
  const progress = new Progress(showProgress({ json: options.json }));
  const paths: string[] = [];
  try {
    for (const ref of refs) {
      if (await stat(ref).then(() => true, () => false)) {
        paths.push(ref);
        continue;
      }
      // The registry client is loaded only for a ref that is not a file: most runs never need it.
      const { localImage } = await import('@pyml/registry/local-image');
      let local;
      try {
        local = await localImage(ref, { log: (m) => progress.step(m), onProgress: (what, bytes) => progress.bytesDone(what, bytes) });
      } catch (error) {
        const message = (error as Error).message;
        throw new PymlError(message.includes(ref) ? message : `cannot pull ${ref}: ${message}`, EXIT.failure, 'a registry image is HOST[:PORT]/REPOSITORY:TAG (credentials as for pyml push); a local one is a layout directory or a tarball');
      }
      if (local.pulled) options.told?.(`pulled ${ref} (${local.pulled.digest}): ${local.pulled.downloaded} blobs downloaded, ${local.pulled.reused} from the cache`);
      paths.push(local.path);
    }
  } finally {
    progress.clear();
  }
  return paths;
}
