import { readFile, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { EXIT, PymlError } from '@pyml/errors';
import { BlobStore, MEDIA_TYPE_INDEX, MEDIA_TYPE_MANIFEST, type OciManifest, pymlCacheDir, writeLayoutDirectory } from '@pyml/image';
import { listCachedImages } from './commands/images.ts';

/**
 * `NAME@VERSION` or `NAME:VERSION` (as `pyml images` lists them) for an image the cache holds: what a Docker user
 * types (`docker run iris:1`), and how `pyml serve iris@1 iris@2` names two versions of one model.
 */
const NAMED = /^([a-z0-9][a-z0-9._-]*)[@:]([A-Za-z0-9][A-Za-z0-9._+-]*)$/;

export function parseNamedImage(ref: string): { name: string; version: string } | undefined {
  const m = NAMED.exec(ref);
  return m ? { name: m[1]!, version: m[2]! } : undefined;
}

/**
 * The layout to run for a NAME@VERSION the cache holds: a pulled copy as it is, or a built image's layout made from
 * the blob store (hard links, under the cache's named/ folder, made once per digest). Undefined when the cache has
 * no such image (the caller's own "no image at" error follows); a usage error when several images carry the name.
 */
export async function namedImageLayout(ref: string): Promise<string | undefined> {
  const named = parseNamedImage(ref);
  if (!named) return undefined;
  const matches = (await listCachedImages()).filter((i) => i.name === named.name && i.version === named.version
    && (i.path !== null || i.held.includes('built')));
  if (matches.length === 0) return undefined;
  if (matches.length > 1) {
    throw new PymlError(`${ref} names ${matches.length} cached images: ${matches.map((m) => m.digest.slice(7, 19)).join(', ')}`, EXIT.usage,
      'give a layout path or a registry reference instead, or remove the ones you do not want (pyml rmi DIGEST)');
  }
  const image = matches[0]!;
  if (image.path !== null) return image.path;
  const dir = join(pymlCacheDir(), 'named', image.digest.slice(7));
  if (await stat(join(dir, 'index.json')).then(() => true, () => false)) return dir;
  const store = new BlobStore();
  const bytes = await readFile(store.path(image.digest));
  const manifest = JSON.parse(bytes.toString('utf8')) as OciManifest;
  await writeLayoutDirectory(dir, {
    store,
    blobs: [image.digest, manifest.config.digest, ...manifest.layers.map((l) => l.digest)],
    index: { schemaVersion: 2, mediaType: MEDIA_TYPE_INDEX, manifests: [{ mediaType: MEDIA_TYPE_MANIFEST, digest: image.digest, size: bytes.length }] },
  });
  return dir;
}
