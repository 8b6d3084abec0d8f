import { rm } from 'node:fs/promises';
import { join } from 'node:path';
import { parseCommandArgs } from '../args.ts';
import { EXIT, PymlError } from '@pyml/errors';
import { BlobStore } from '@pyml/image';
import { defaultRootfsCache, processesUsing } from '@pyml/launcher';
import { pulledCacheDir } from '@pyml/registry/cached-pull';
import { printJson, usage } from '../output.ts';
import { type CachedImage, listCachedImages } from './images.ts';

export const help = `Usage: pyml rmi IMAGE... [options]

Removes images from pyml's cache (what pyml images lists), as docker rmi removes them from an engine: the pulled
copy (pulled/<digest>), the unpacked tree (rootfs/<digest>) and the built manifest in the blob store. Layers stay
in the blob store, where other images and the next build use them (pyml cache prune --blobs removes unused ones);
layouts written by pyml build --out and tarballs are never touched. An image a running process uses (pyml serve,
a model process) is not removed.

IMAGE is a digest (sha256:HEX, or the first 4 or more hex digits, as pyml images shows them), NAME:VERSION, or a
reference it was pulled as. A name that matches several images is refused with their digests.

Options:
  --json       print one JSON object (schemas/rmi-output.schema.json)
  -h, --help   show this help

Exit codes: 0 removed; 1 an image is in use, or could not be removed; 2 no such image, or an ambiguous one.

Examples:
  pyml rmi iris:1.0.0
  pyml rmi 84b722b8ad0d 127.0.0.1:5000/models/wine:2
`;

/** The one cached image IMAGE names; a usage error (2) when none or several do. */
function pick(images: CachedImage[], ref: string): CachedImage {
  const hex = /^(?:sha256:)?([0-9a-f]{4,64})$/.exec(ref)?.[1];
  const matches = images.filter((i) => (hex !== undefined && i.digest.slice(7).startsWith(hex))
    || (i.name !== null && i.version !== null && `${i.name}:${i.version}` === ref) || i.refs.includes(ref));
  if (matches.length === 1) return matches[0]!;
  if (matches.length === 0) throw new PymlError(`no image ${ref} in the cache`, EXIT.usage, 'pyml images lists them: a digest (or its first hex digits), NAME:VERSION, or a reference it was pulled as');
  throw new PymlError(`${ref} names ${matches.length} images: ${matches.map((m) => m.digest.slice(7, 19)).join(', ')}`, EXIT.usage, 'give the digest (or its first hex digits) of the one to remove');
}

export async function run(args: string[]): Promise<number> {
  const { values, positionals } = parseCommandArgs('rmi', {
    args, allowPositionals: true,
    options: { json: { type: 'boolean', default: false }, help: { type: 'boolean', short: 'h' } },
  });
  if (values.help) { process.stdout.write(help); return EXIT.ok; }
  if (positionals.length === 0) throw usage('pyml rmi needs an IMAGE: a digest, NAME:VERSION or a pulled reference (pyml images lists them)');
  const images = await listCachedImages();
  // Every name is checked before anything is removed: a typo in the third does not leave the first two half done.
  const chosen = [...new Map(positionals.map((ref) => { const i = pick(images, ref); return [i.digest, i] as const; })).values()];
  const store = new BlobStore();
  const removed: { digest: string; name: string | null; version: string | null; removed: string[] }[] = [];
  const failures: string[] = [];
  for (const image of chosen) {
    const hex = image.digest.slice(7);
    const paths = [
      ...(image.held.includes('built') ? [{ what: 'built', path: store.path(image.digest) }] : []),
      ...(image.held.includes('pulled') ? [{ what: 'pulled', path: image.path ?? join(pulledCacheDir(), hex) }] : []),
      ...(image.held.includes('unpacked') ? [{ what: 'unpacked', path: join(defaultRootfsCache(), `sha256-${hex}`) }] : []),
    ];
    const users = await processesUsing(paths.map((p) => p.path));
    const busy = [...users.entries()];
    if (busy.length) {
      failures.push(`${label(image)} is in use by process ${[...new Set(busy.flatMap(([, pids]) => pids))].join(', ')} (${busy.map(([p]) => paths.find((x) => x.path === p)!.what).join(', ')}): stop it first`);
      continue;
    }
    const done: string[] = [];
    for (const { what, path } of paths) {
      try {
        await rm(path, { recursive: true, force: true });
        done.push(what);
      } catch (error) {
        failures.push(`${label(image)}: cannot remove ${path}: ${(error as Error).message}`);
      }
    }
    removed.push({ digest: image.digest, name: image.name, version: image.version, removed: done });
  }
  if (values.json) {
    printJson({ ok: failures.length === 0, removed, ...(failures.length ? { failures } : {}) });
  } else {
    for (const r of removed) process.stdout.write(`Deleted: ${r.digest}${r.name ? ` (${r.name}:${r.version})` : ''}: ${r.removed.join(', ')}\n`);
  }
  if (failures.length) {
    if (!values.json) for (const f of failures) process.stderr.write(`error: ${f}\n`);
    return EXIT.failure;
  }
  return EXIT.ok;
}

function label(image: CachedImage): string {
  return image.name ? `${image.name}:${image.version} (${image.digest.slice(7, 19)})` : image.digest;
}
