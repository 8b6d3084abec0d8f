import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { build, type BuildOptions } from '@pyml/core';
import { layerEntries, openImage, type LayerEntrySummary, type OpenedImage } from '@pyml/image';
import { PART_ANNOTATION, PART_NAME_ANNOTATION } from '@pyml/image/pyml-format';

export type ReproducibleCheck = { same: true; digest: string } | { same: false; message: string };

/**
 * `pyml build --reproducible-check`: the project built twice, each from its own empty cache into its own
 * temporary layout (nothing reused between them), then compared. Different digests are explained by the first
 * layer that differs and, inside it, the first tar entry (its name, and whether content, mode, owner, mtime,
 * size or link differ); else by the config or the manifest.
 */
export async function checkReproducible(o: { project: string; platform?: BuildOptions['platform']; log: (m: string) => void }): Promise<ReproducibleCheck> {
  const dir = await mkdtemp(path.join(tmpdir(), 'pyml-reproducible-'));
  try {
    const layouts: string[] = [];
    const digests: string[] = [];
    for (const n of [1, 2]) {
      const out = path.join(dir, `image-${n}`);
      o.log(`reproducible check: build ${n} of 2, from an empty cache`);
      const built = await build({ project: o.project, out, cacheDir: path.join(dir, `cache-${n}`), platform: o.platform, log: (m) => o.log(`build ${n}: ${m}`) });
      layouts.push(out);
      digests.push(built.digest);
    }
    if (digests[0] === digests[1]) return { same: true, digest: digests[0]! };
    o.log('reproducible check: comparing the two images');
    const [a, b] = await Promise.all(layouts.map((l) => openImage(l)));
    try {
      return { same: false, message: `not reproducible: two builds from empty caches gave ${digests[0]} and ${digests[1]}: ${await firstDifference(a!, b!)}` };
    } finally {
      await Promise.all([a!.close(), b!.close()]);
    }
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

/** The first difference between two images, bottom layer first, in words. */
export async function firstDifference(a: OpenedImage, b: OpenedImage): Promise<string> {
  if (a.layers.length !== b.layers.length) return `build 1 has ${a.layers.length} layers, build 2 has ${b.layers.length}`;
  for (const [i, la] of a.layers.entries()) {
    const lb = b.layers[i]!;
    if (la.digest === lb.digest) continue;
    const name = `layer ${i} (${la.annotations?.[PART_ANNOTATION] ?? 'layer'} ${la.annotations?.[PART_NAME_ANNOTATION] ?? i})`;
    if (la.diffId === lb.diffId) return `${name}: same content, compressed differently (${la.digest} vs ${lb.digest})`;
    const [ea, eb] = await Promise.all([layerEntries(la), layerEntries(lb)]);
    return `${name}: ${entryDifference(ea, eb)}`;
  }
  if (a.manifest.config.digest !== b.manifest.config.digest) {
    const ca = a.config as unknown as Record<string, unknown>;
    const cb = b.config as unknown as Record<string, unknown>;
    const key = [...new Set([...Object.keys(ca), ...Object.keys(cb)])].sort().find((k) => JSON.stringify(ca[k]) !== JSON.stringify(cb[k]));
    return `the image config differs${key ? ` in "${key}": ${JSON.stringify(ca[key])} vs ${JSON.stringify(cb[key])}` : ''}`;
  }
  return `the manifests differ (annotations: ${JSON.stringify(a.manifest.annotations ?? {})} vs ${JSON.stringify(b.manifest.annotations ?? {})})`;
}

const FIELDS: (keyof LayerEntrySummary)[] = ['type', 'size', 'mode', 'uid', 'gid', 'mtime', 'linkname'];

function entryDifference(a: LayerEntrySummary[], b: LayerEntrySummary[]): string {
  for (let i = 0; i < Math.max(a.length, b.length); i++) {
    const x = a[i];
    const y = b[i];
    if (!x || !y) return `entry ${i}: ${x ? `"${x.name}" only in build 1` : `"${y!.name}" only in build 2`}`;
    if (x.name !== y.name) return `entry ${i}: "${x.name}" in build 1, "${y.name}" in build 2 (the files or their order differ)`;
    const fields = FIELDS.filter((f) => x[f] !== y[f]).map((f) => `${f} ${JSON.stringify(x[f])} vs ${JSON.stringify(y[f])}`);
    if (x.sha256 !== y.sha256) fields.unshift(`content (sha256 ${x.sha256.slice(0, 16)}… vs ${y.sha256.slice(0, 16)}…)`);
    if (fields.length) return `file "${x.name}" differs: ${fields.join(', ')}`;
  }
  return 'the tar streams differ in padding or headers only';
}
