import { createWriteStream } from 'node:fs';
import { mkdir, rename, rm } from 'node:fs/promises';
import path from 'node:path';
import { pipeline } from 'node:stream/promises';
import { openImage, type BlobStore, type Layer, type LayerMediaType } from '@pyml/image';
import { ConfigError } from '../errors.ts';
import type { ResolvedConfig } from '../types.ts';
import type { BaseImage } from './base-image.ts';

/** Libraries any glibc-based Node image carries; a dependency layer adds only what lies beyond them. */
const GLIBC_NODE_LIBS = ['libc.so.6', 'libm.so.6', 'libstdc++.so.6', 'libgcc_s.so.1', 'libpthread.so.0', 'libdl.so.2', 'librt.so.1'];

/**
 * A base image from an OCI layout directory or tarball: its layers are reused byte for byte (copied into the blob
 * store, each checked against its digest), and its config's Env and labels are kept.
 */
export async function importBaseImage(ref: string, config: ResolvedConfig, store: BlobStore, log: (m: string) => void): Promise<BaseImage> {
  let source;
  try {
    source = await openImage(ref);
  } catch (err) {
    throw new ConfigError(`${config.configFile}: image.base: ${(err as Error).message}`, "image.base is 'pyml/node' or the path of an OCI image layout");
  }
  try {
    const want = config.image.platform;
    const arch = source.config.architecture;
    if (source.config.os !== want.os || arch !== want.architecture) {
      throw new ConfigError(`${config.configFile}: image.base ${ref} is for ${source.config.os}/${arch}, but the image is built for ${want.os}/${want.architecture}`,
        'choose a base for the target platform, or change image.platform');
    }
    log(`base layers from ${ref}`);
    const diffIds = source.config.rootfs?.diff_ids ?? [];
    const layers: Layer[] = [];
    for (const [i, d] of source.layers.entries()) {
      if (!(await store.has(d.digest))) {
        const target = store.path(d.digest);
        await mkdir(path.dirname(target), { recursive: true });
        const tmp = `${target}.${process.pid}.tmp`;
        try {
          await pipeline(await source.openBlob(d.digest), createWriteStream(tmp));
          await rename(tmp, target);
        } finally {
          await rm(tmp, { force: true });
        }
      }
      layers.push({
        mediaType: d.mediaType as LayerMediaType, digest: d.digest, diffId: diffIds[i] ?? '', size: d.size, reused: true,
        annotations: { 'dev.pyml.part': 'base', 'dev.pyml.part.name': `base-${i}` },
      });
    }
    const env = source.config.config?.Env ?? [];
    const labels = source.config.config?.Labels ?? {};
    const nodeVersion = env.find((e: string) => e.startsWith('NODE_VERSION='))?.slice('NODE_VERSION='.length);
    return {
      layers,
      libraries: GLIBC_NODE_LIBS,
      env,
      labels,
      nodePath: labels['dev.pyml.node.path'] ?? '/usr/local/bin/node',
      nodeVersion: nodeVersion ? `v${nodeVersion.replace(/^v/, '')}` : 'unknown',
    };
  } finally {
    await source.close();
  }
}
