import { createReadStream } from 'node:fs';
import { readdir, stat } from 'node:fs/promises';
import { join } from 'node:path';
import type { Readable } from 'node:stream';
import tarStream from 'tar-stream';
import { openImage } from '@pyml/image';

/**
 * The image as one tar a Docker engine can `load`: a tarball ref is sent as it is (pyml writes OCI layout +
 * docker-archive in one tar); a layout directory is streamed as a tar of its files plus the docker-archive
 * `manifest.json` pointing at the same blobs, so nothing is copied to disk.
 */
export async function imageTarStream(ref: string, repoTags: string[] = []): Promise<Readable> {
  const info = await stat(ref);
  if (info.isFile()) return createReadStream(ref);
  const source = await openImage(ref);
  const blob = (digest: string) => `blobs/${digest.replace(':', '/')}`;
  const manifestJson = JSON.stringify([{ Config: blob(source.manifest.config.digest), RepoTags: repoTags, Layers: source.layers.map((l) => blob(l.digest)) }]);
  await source.close();
  const pack = tarStream.pack();
  void (async () => {
    try {
      const add = (name: string, file: string, size: number) => new Promise<void>((resolve, reject) => {
        const entry = pack.entry({ name, size, mode: 0o644, mtime: new Date(0) }, (error) => (error ? reject(error) : resolve()));
        createReadStream(file).on('error', reject).pipe(entry);
      });
      for (const name of ['oci-layout', 'index.json']) await add(name, join(ref, name), (await stat(join(ref, name))).size);
      for (const algo of await readdir(join(ref, 'blobs'))) {
        for (const hex of await readdir(join(ref, 'blobs', algo))) {
          const file = join(ref, 'blobs', algo, hex);
          await add(`blobs/${algo}/${hex}`, file, (await stat(file)).size);
        }
      }
      pack.entry({ name: 'manifest.json', mode: 0o644, mtime: new Date(0) }, manifestJson);
      pack.finalize();
    } catch (error) {
      pack.destroy(error as Error);
    }
  })();
  return pack as unknown as Readable;
}
