import { randomBytes } from 'node:crypto';
import { rm, stat } from 'node:fs/promises';
import path from 'node:path';
import { BlobStore, writeIndexLayout } from '@pyml/image';
import { parsePlatform } from '../config/resolve-config.ts';
import { ConfigError } from '../errors.ts';
import type { Platform } from '../types.ts';
import { build, refuseToReplaceOut, type BuildOptions, type BuildResult } from './build.ts';

export interface MultiPlatformResult extends Omit<BuildResult, 'platform' | 'parts' | 'tar'> {
  /** The image index's digest: what a registry tag points at. */
  digest: string;
  platforms: { platform: string; digest: string; parts: BuildResult['parts'] }[];
}

/** `linux/amd64,linux/arm64` → platforms, each checked. */
export function parsePlatformList(text: string): Platform[] {
  const list = text.split(',').map((s) => s.trim()).filter(Boolean);
  if (list.length === 0) throw new ConfigError(`--platform ${JSON.stringify(text)} names no platform`, 'e.g. --platform linux/amd64,linux/arm64');
  const platforms = list.map((p) => parsePlatform(p, '--platform'));
  const keys = platforms.map((p) => `${p.os}/${p.architecture}`);
  const twice = keys.find((k, i) => keys.indexOf(k) !== i);
  if (twice) throw new ConfigError(`--platform lists ${twice} twice`);
  return platforms;
}

/**
 * Builds one image per platform (each with that platform's native dependencies and base) and writes an OCI layout
 * holding an image index over them. Layers that are the same on every platform (weights, model code) are shared.
 */
export async function buildPlatforms(options: Omit<BuildOptions, 'platform' | 'tar'>, platforms: Platform[]): Promise<MultiPlatformResult> {
  const started = performance.now();
  const projectDir = (await stat(options.project)).isDirectory() ? options.project : path.dirname(options.project);
  const layout = path.resolve(options.out ?? path.join(projectDir, '.pyml', 'image'));
  await refuseToReplaceOut(layout);
  const store = new BlobStore(options.cacheDir, { hold: true });
  await store.sweepDeadTemps();
  const results: BuildResult[] = [];
  const scratch: string[] = [];
  try {
    for (const platform of platforms) {
      options.log?.(`building for ${platform.os}/${platform.architecture}`);
      // Each platform's image goes to a scratch layout; its blobs stay in the store for the index layout.
      // Named by our pid first, so that a later build removes it should this one be killed (sweepDeadTemps).
      const out = path.join(store.dir, 'tmp', `${process.pid}-platform-${randomBytes(6).toString('hex')}`);
      scratch.push(out);
      results.push(await build({ ...options, out, platform, store }));
    }
    const first = results[0]!;
    const { indexDigest } = await writeIndexLayout(
      results.map((r, i) => ({ manifestDigest: r.digest, platform: { os: platforms[i]!.os, architecture: platforms[i]!.architecture } })),
      layout, { store, refName: first.version, annotations: { 'org.opencontainers.image.title': first.name, 'org.opencontainers.image.version': first.version } },
    );
    const { platform: _p, parts: _parts, tar: _t, ...common } = first;
    return {
      ...common, digest: indexDigest, layout, seconds: (performance.now() - started) / 1000,
      platforms: results.map((r) => ({ platform: r.platform, digest: r.digest, parts: r.parts })),
    };
  } finally {
    for (const dir of scratch) await rm(dir, { recursive: true, force: true });
    await store.release();
  }
}
