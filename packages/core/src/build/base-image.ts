import path from 'node:path';
import { buildLayer, type BlobStore, type BuiltLayer } from '@pyml/image';
import { PART, ociArchitecture, partAnnotations } from '@pyml/image/pyml-format';
import type { ResolvedConfig } from '../types.ts';
import { DEFAULT_BASE } from '../config/resolve-config.ts';
import { NODE_IN_IMAGE, nodeBaseFiles } from './node-base.ts';
import { importBaseImage } from './import-base.ts';
import { ConfigError } from '../errors.ts';
import { PART_COMPRESSION } from './layer-compression.ts';
import type { DebianOrigin } from './debian-origins.ts';
import { foreignNodeBase } from './foreign-node-base.ts';

export interface BaseImage {
  layers: BuiltLayer[];
  /** Shared libraries the base provides (paths inside the image). */
  libraries: string[];
  env: string[];
  labels: Record<string, string>;
  nodePath: string;
  nodeVersion: string;
  /** What the base is, for pyml.json: 'pyml/node' (this machine's node) or the image it was imported from, by digest. */
  identity: { name: string; digest?: string };
  /** The default base's files as taken from this machine (image path, host file), for the dependency manifest. */
  hostFiles?: { path: string; source: string }[];
  /** A base made for another architecture: where each library came from (its Debian package of that architecture). */
  fileOrigins?: Record<string, DebianOrigin>;
  /** A base made for another architecture: the npm package its node binary came from. */
  nodePackage?: { name: string; version: string; integrity?: string; license?: string };
  /** Manifest annotations naming the base (org.opencontainers.image.base.name/digest), for registry bases. */
  annotations?: Record<string, string>;
}

export const DEFAULT_ENV = ['PATH=/usr/local/bin:/usr/bin:/bin', 'NODE_ENV=production'];

export async function resolveBase(config: ResolvedConfig, store: BlobStore, epoch: number, log: (m: string) => void): Promise<BaseImage> {
  if (config.image.base !== DEFAULT_BASE) return importBaseImage(config.image.base, config, store, log);
  const host = config.image.platform.architecture === ociArchitecture();
  if (!host) return foreignBase(config, store, epoch, log);
  const { files, libraries } = await nodeBaseFiles(process.execPath, path.join(store.dir, 'ldd'));
  log('base layer (this machine\'s node)');
  const layer = await buildLayer(files, {
    store, compression: PART_COMPRESSION.base, sourceDateEpoch: epoch,
    annotations: partAnnotations(PART.base, 'base'),
  });
  // The base's node is this process's own binary: its version is ours (no second node started to ask).
  const hostFiles = files.flatMap((f) => (f.source ? [{ path: f.path, source: f.source }] : []));
  return { layers: [layer], libraries, env: DEFAULT_ENV, labels: {}, nodePath: NODE_IN_IMAGE, nodeVersion: process.version, identity: { name: DEFAULT_BASE }, hostFiles };
}

/** The default base for another architecture: its own node and libraries (see foreignNodeBase), never this machine's. */
async function foreignBase(config: ResolvedConfig, store: BlobStore, epoch: number, log: (m: string) => void): Promise<BaseImage> {
  const { platform } = config.image;
  if (platform.os !== 'linux') throw new ConfigError(`${config.configFile}: image.platform ${platform.os}/${platform.architecture}: the default base is linux only`);
  const base = await foreignNodeBase(platform, store.dir, log);
  log(`base layer (node ${base.nodeVersion} for linux/${platform.architecture})`);
  const layer = await buildLayer(base.files, {
    store, compression: PART_COMPRESSION.base, sourceDateEpoch: epoch, annotations: partAnnotations(PART.base, 'base'),
  });
  const hostFiles = base.files.flatMap((f) => (f.source ? [{ path: f.path, source: f.source }] : []));
  const { source: _, ...nodePackage } = base.node;
  return {
    layers: [layer], libraries: base.libraries, env: DEFAULT_ENV, labels: {}, nodePath: NODE_IN_IMAGE, nodeVersion: base.nodeVersion,
    identity: { name: `${DEFAULT_BASE} (linux/${platform.architecture})` }, hostFiles, fileOrigins: base.origins, nodePackage,
  };
}
