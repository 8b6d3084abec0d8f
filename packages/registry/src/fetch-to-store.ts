import { readFile, rm } from 'node:fs/promises';
import type { BlobStore, OciDescriptor, OciImageConfig, OciPlatform } from '@pyml/image';
import { downloadBlob, resolveManifest } from './pull-image.ts';
import { formatReference, parseReference } from './reference.ts';
import { RegistryClient } from './registry-client.ts';

export interface StoredImage {
  /** `HOST/REPO:TAG` as given, without `docker://`. */
  name: string;
  registry: string;
  repository: string;
  manifestDigest: string;
  config: OciImageConfig;
  layers: OciDescriptor[];
}

/**
 * Fetches a registry image's config and layers into a blob store, byte for byte, downloading only the blobs the
 * store lacks (the manifest is always asked for, since a tag moves). Used for base images.
 */
export async function fetchToStore(refText: string, store: BlobStore, platform: OciPlatform, log: (m: string) => void = () => {}): Promise<StoredImage> {
  const ref = parseReference(refText);
  const client = new RegistryClient(ref, { actions: 'pull', onRetry: log });
  const { fetched, manifest, wanted } = await resolveManifest(client, ref, platform);
  for (const { d, what } of wanted) {
    if (await store.has(d.digest)) continue;
    log(`fetching ${what} ${d.digest.slice(0, 19)} of ${formatReference(ref)}`);
    const temp = await store.tempPath();
    try {
      await downloadBlob(client, d, what, temp, {});
      await store.commit(temp, d.digest);
    } finally {
      await rm(temp, { force: true });
    }
  }
  let config: OciImageConfig;
  try {
    config = JSON.parse(await readFile(store.path(manifest.config.digest), 'utf8')) as OciImageConfig;
  } catch (error) {
    throw new Error(`${formatReference(ref)}: config ${manifest.config.digest} is not valid JSON: ${(error as Error).message}`);
  }
  const diffIds = config.rootfs?.diff_ids;
  if (!Array.isArray(diffIds) || diffIds.length !== manifest.layers.length) {
    throw new Error(`${formatReference(ref)}: config rootfs.diff_ids must list one digest per layer (${manifest.layers.length})`);
  }
  return {
    name: formatReference({ ...ref, digest: undefined }), registry: ref.registry, repository: ref.repository,
    manifestDigest: fetched.digest, config, layers: manifest.layers,
  };
}
