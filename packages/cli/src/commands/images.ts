import { lstat, readdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { parseCommandArgs } from '../args.ts';
import { EXIT } from '@pyml/errors';
import { BlobStore, listCacheEntries, openImage, pymlCacheDir, MEDIA_TYPE_MANIFEST, type OciManifest } from '@pyml/image';
import { defaultRootfsCache } from '@pyml/launcher';
import { PULLED_REFS_FILE, pulledCacheDir } from '@pyml/registry/cached-pull';
import { formatBytes, printJson, usage } from '../output.ts';
import { filterHelp, imageFilter } from '../image-filter.ts';

export const help = `Usage: pyml images [options]

Lists the images pyml's cache holds (PYML_CACHE_DIR, default ~/.cache/pyml), newest use first, one row per image
(manifest digest):
  built     an image a build wrote (its manifest and blobs are in the blob store)
  pulled    a registry or engine image that serve, predict or batch were given (pulled/<digest>)
  unpacked  an image unpacked to run it (rootfs/<digest>)
NAME and VERSION are the image's title and version annotations (a pyml image's name and version); a pulled image
also lists the references it was pulled as. SIZE is what the registry would store (config and compressed
layers); LAST USED is the last build, pull or run of it. 'pyml cache du' says what the cache takes on disk,
'pyml cache prune' removes what is not used.

Options:
${filterHelp}
  --json               print one JSON object (schemas/images-output.schema.json)
  -h, --help           show this help

Examples:
  pyml images
  pyml images --json | jq -r '.images[] | "\\(.name):\\(.version) \\(.digest)"'
  pyml images --filter reference='iris*' --filter until=7d     # iris images unused for a week
`;

type Held = 'built' | 'pulled' | 'unpacked';

export interface CachedImage {
  name: string | null;
  version: string | null;
  digest: string;
  /** Bytes of the config and layers as stored in a registry; null when only an unpacked tree is left. */
  size: number | null;
  lastUsed: string;
  held: Held[];
  refs: string[];
  /** Where to run it from: a pulled layout or tarball, or null for a built image (its layout is the build's --out). */
  path: string | null;
}

export async function run(args: string[]): Promise<number> {
  const { values, positionals } = parseCommandArgs('images', {
    args, allowPositionals: true,
    options: { filter: { type: 'string', multiple: true, default: [] }, json: { type: 'boolean', default: false }, help: { type: 'boolean', short: 'h' } },
  });
  if (values.help) { process.stdout.write(help); return EXIT.ok; }
  if (positionals.length > 0) throw usage(`pyml images takes no arguments, got ${positionals.join(' ')}`);
  const matches = imageFilter(values.filter ?? []);
  const images = (await listCachedImages()).filter(matches);
  if (values.json) {
    printJson({ ok: true, cacheDir: pymlCacheDir(), images });
    return EXIT.ok;
  }
  printTable(images, (values.filter ?? []).length > 0);
  return EXIT.ok;
}

/** Every image the cache holds, merged by manifest digest, most recently used first. */
export async function listCachedImages(): Promise<CachedImage[]> {
  const byDigest = new Map<string, CachedImage>();
  const add = (digest: string, held: Held, used: Date, info: Partial<Pick<CachedImage, 'name' | 'version' | 'size' | 'path'>> & { refs?: string[] }) => {
    let image = byDigest.get(digest);
    if (!image) byDigest.set(digest, (image = { name: null, version: null, digest, size: null, lastUsed: used.toISOString(), held: [], refs: [], path: null }));
    if (!image.held.includes(held)) image.held.push(held);
    if (used.toISOString() > image.lastUsed) image.lastUsed = used.toISOString();
    image.name ??= info.name ?? null;
    image.version ??= info.version ?? null;
    image.size ??= info.size ?? null;
    image.path ??= info.path ?? null;
    for (const r of info.refs ?? []) if (!image.refs.includes(r)) image.refs.push(r);
  };
  for (const found of await builtManifests()) add(found.digest, 'built', found.used, describeManifest(found.manifest));
  for (const entry of (await listCacheEntries(pulledCacheDir())).filter((e) => !e.temporary)) {
    const image = await openImage(entry.path).catch(() => undefined);
    if (!image) continue;
    try {
      add(image.manifestDigest, 'pulled', entry.lastUsed, { ...describeManifest(image.manifest), path: entry.path, refs: await pulledRefs(entry.path) });
    } finally {
      await image.close();
    }
  }
  for (const entry of (await listCacheEntries(defaultRootfsCache(), ['files'])).filter((e) => !e.temporary && /^sha256-[0-9a-f]{64}$/.test(e.name))) {
    const pyml = await readFile(join(entry.path, 'opt/pyml/pyml.json'), 'utf8').then((t) => JSON.parse(t) as { name?: string; version?: string }, () => undefined);
    add(entry.name.replace('-', ':'), 'unpacked', entry.lastUsed, { name: pyml?.name, version: pyml?.version });
  }
  const order: Held[] = ['built', 'pulled', 'unpacked'];
  for (const image of byDigest.values()) image.held.sort((a, b) => order.indexOf(a) - order.indexOf(b));
  return [...byDigest.values()].sort((a, b) => b.lastUsed.localeCompare(a.lastUsed) || a.digest.localeCompare(b.digest));
}

const MANIFEST_MAX_BYTES = 64 * 1024;

/**
 * Image manifests in the blob store: a build puts its manifest there beside its layers (and links it into the layout,
 * which sets the blob's ctime: its last build). Small blobs only are read; layers are megabytes.
 */
async function builtManifests(): Promise<{ digest: string; manifest: OciManifest; used: Date }[]> {
  const dir = new BlobStore().blobsDir;
  const found: { digest: string; manifest: OciManifest; used: Date }[] = [];
  for (const name of await readdir(dir).catch(() => [] as string[])) {
    if (!/^[0-9a-f]{64}$/.test(name)) continue;
    const file = join(dir, name);
    const info = await lstat(file).catch(() => undefined);
    if (!info?.isFile() || info.size > MANIFEST_MAX_BYTES || info.size < 20) continue;
    const text = await readFile(file, 'utf8').catch(() => '');
    if (!text.startsWith('{') || !text.includes('"layers"')) continue;
    let manifest: OciManifest;
    try {
      manifest = JSON.parse(text) as OciManifest;
    } catch {
      continue;
    }
    if (manifest.schemaVersion !== 2 || !Array.isArray(manifest.layers) || !manifest.config) continue;
    if (manifest.mediaType !== undefined && manifest.mediaType !== MEDIA_TYPE_MANIFEST) continue;
    found.push({ digest: `sha256:${name}`, manifest, used: info.ctime });
  }
  return found;
}

function describeManifest(manifest: OciManifest): { name?: string; version?: string; size: number } {
  const a = manifest.annotations ?? {};
  return {
    name: a['org.opencontainers.image.title'],
    version: a['org.opencontainers.image.version'] ?? a['org.opencontainers.image.ref.name'],
    size: manifest.config.size + manifest.layers.reduce((n, l) => n + l.size, 0),
  };
}

async function pulledRefs(path: string): Promise<string[]> {
  const text = await readFile(join(path, PULLED_REFS_FILE), 'utf8').catch(() => undefined);
  if (!text) return [];
  try {
    const refs = (JSON.parse(text) as { refs?: unknown }).refs;
    return Array.isArray(refs) ? refs.filter((r): r is string => typeof r === 'string') : [];
  } catch {
    return [];
  }
}

function printTable(images: CachedImage[], filtered: boolean): void {
  if (images.length === 0 && filtered) {
    process.stdout.write('no images match the filters\n');
    return;
  }
  if (images.length === 0) {
    process.stdout.write(`no images in ${pymlCacheDir()} (pyml build, or serve/predict/batch of a registry image, put them there)\n`);
    return;
  }
  const now = Date.now();
  const rows = images.map((i) => [
    i.name ?? '<none>', i.version ?? '<none>', i.digest.slice(7, 19), i.size === null ? '-' : formatBytes(i.size),
    `${ago(now - Date.parse(i.lastUsed))}`, i.held.join(', '), i.refs.join(' '),
  ]);
  const header = ['NAME', 'VERSION', 'DIGEST', 'SIZE', 'LAST USED', 'HELD AS', 'PULLED AS'];
  const widths = header.map((h, c) => Math.max(h.length, ...rows.map((r) => r[c]!.length)));
  for (const r of [header, ...rows]) process.stdout.write(`${r.map((cell, c) => (c === 3 ? cell.padStart(widths[c]!) : cell.padEnd(widths[c]!))).join('  ').trimEnd()}\n`);
}

function ago(ms: number): string {
  const s = Math.max(0, Math.round(ms / 1000));
  if (s < 60) return `${s} s ago`;
  if (s < 7200) return `${Math.round(s / 60)} min ago`;
  if (s < 172_800) return `${Math.round(s / 3600)} h ago`;
  return `${Math.round(s / 86_400)} days ago`;
}
