import { open, rm } from 'node:fs/promises';
import path from 'node:path';
import { pipeline } from 'node:stream/promises';
import { openImage, storedLayer, type BlobStore, type BuiltLayer, type LayerMediaType, type OciDescriptor, type OciImageConfig } from '@pyml/image';
import { PART, partAnnotations } from '@pyml/image/pyml-format';
import { looksLikeRegistryRef } from '@pyml/registry/reference';
import { BuildError, ConfigError } from '../errors.ts';
import type { ResolvedConfig } from '../types.ts';
import type { BaseImage } from './base-image.ts';

/** Libraries any glibc-based Node image carries; a dependency layer adds only what lies beyond them. */
const GLIBC_NODE_LIBS = ['libc.so.6', 'libm.so.6', 'libstdc++.so.6', 'libgcc_s.so.1', 'libpthread.so.0', 'libdl.so.2', 'librt.so.1'];

/**
 * A base image from an OCI layout directory or tarball: its layers are reused byte for byte (copied into the blob
 * store, each checked against its digest), and its config's Env and labels are kept.
 */
export async function importBaseImage(ref: string, config: ResolvedConfig, store: BlobStore, log: (m: string) => void): Promise<BaseImage> {
  if (ref.startsWith('docker://') || (looksLikeRegistryRef(ref) && !path.isAbsolute(ref))) return importRegistryBase(ref, config, store, log);
  let source;
  try {
    source = await openImage(ref);
  } catch (err) {
    throw new ConfigError(`${config.configFile}: image.base: ${(err as Error).message}`, "image.base is 'pyml/node' or the path of an OCI image layout");
  }
  try {
    checkPlatform(ref, source.config, config);
    log(`base layers from ${ref}`);
    const diffIds = source.config.rootfs?.diff_ids ?? [];
    const layers: BuiltLayer[] = [];
    for (const [i, d] of source.layers.entries()) {
      if (!(await store.has(d.digest))) {
        const tmp = await store.tempPath();
        try {
          // Opened before the pipeline runs: a file that createWriteStream opened late could appear after a failure's rm.
          await pipeline(await source.openBlob(d.digest), (await open(tmp, 'w')).createWriteStream());
          await store.commit(tmp, d.digest);
        } finally {
          await rm(tmp, { force: true });
        }
      }
      layers.push(baseLayer(d, diffIds[i], i, store));
    }
    return { ...baseFrom(source.config, layers), identity: { name: ref, digest: source.manifestDigest } };
  } finally {
    await source.close();
  }
}

/**
 * A base image from a registry (`HOST/REPO:TAG`): its blobs are fetched into the blob store once (the manifest is
 * asked for on every build, since a tag moves), the platform's image is picked from an index, and the manifest
 * records where the base came from, so a push to the same registry mounts the base layers.
 */
async function importRegistryBase(ref: string, config: ResolvedConfig, store: BlobStore, log: (m: string) => void): Promise<BaseImage> {
  let fetched;
  try {
    // Loaded only for a registry base: the registry client is no part of a build from the default base.
    const { fetchToStore } = await import('@pyml/registry/fetch-to-store');
    fetched = await fetchToStore(ref, store, config.image.platform, log);
  } catch (err) {
    // Not a config mistake as such (the registry may be down, the credentials refused): exit 1, naming the field.
    throw new BuildError(`${config.configFile}: image.base ${ref}: ${(err as Error).message}`, "image.base is 'pyml/node', the path of an OCI image layout, or HOST/REPO:TAG in a registry");
  }
  checkPlatform(ref, fetched.config, config);
  log(`base layers from ${fetched.name} (${fetched.manifestDigest.slice(0, 19)})`);
  const diffIds = fetched.config.rootfs.diff_ids;
  return {
    ...baseFrom(fetched.config, fetched.layers.map((d, i) => baseLayer(d, diffIds[i], i, store))),
    identity: { name: fetched.name, digest: fetched.manifestDigest },
    annotations: { 'org.opencontainers.image.base.name': fetched.name, 'org.opencontainers.image.base.digest': fetched.manifestDigest },
  };
}

function checkPlatform(ref: string, image: OciImageConfig, config: ResolvedConfig): void {
  const want = config.image.platform;
  if (image.os !== want.os || image.architecture !== want.architecture) {
    throw new ConfigError(`${config.configFile}: image.base ${ref} is for ${image.os}/${image.architecture}, but the image is built for ${want.os}/${want.architecture}`,
      'choose a base for the target platform, or change image.platform');
  }
}

/** A base layer, now in the blob store: it opens its bytes there. */
function baseLayer(d: OciDescriptor, diffId: string | undefined, i: number, store: BlobStore): BuiltLayer {
  const record = { mediaType: d.mediaType, digest: d.digest, diffId: diffId ?? '', size: d.size, annotations: partAnnotations(PART.base, `base-${i}`) };
  return { ...storedLayer(record, store), mediaType: d.mediaType as LayerMediaType, reused: true };
}

/** The base's config is kept and extended: its Env and labels; the node the entrypoint runs is the base's. */
function baseFrom(image: OciImageConfig, layers: BuiltLayer[]): Omit<BaseImage, 'identity'> {
  const env = image.config?.Env ?? [];
  const labels = image.config?.Labels ?? {};
  const nodeVersion = env.find((e: string) => e.startsWith('NODE_VERSION='))?.slice('NODE_VERSION='.length);
  return {
    layers,
    libraries: GLIBC_NODE_LIBS,
    env,
    labels,
    nodePath: labels['dev.pyml.node.path'] ?? '/usr/local/bin/node',
    nodeVersion: nodeVersion ? `v${nodeVersion.replace(/^v/, '')}` : 'unknown',
  };
}
