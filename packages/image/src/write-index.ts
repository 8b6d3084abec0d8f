import { mkdir, readFile, rm, writeFile } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import { randomBytes } from 'node:crypto';
import type { BlobStore } from './blob-store.ts';
import { canonicalJson } from './canonical-json.ts';
import { digestHex } from './digest.ts';
import type { ImagePlatform } from './image.ts';
import {
  ANNOTATION_REF_NAME, MEDIA_TYPE_INDEX, MEDIA_TYPE_MANIFEST, OCI_LAYOUT_VERSION, type OciIndex, type OciManifest,
} from './oci.ts';
import { replaceDirectory } from './replace-layout.ts';

export interface IndexEntry {
  /** A manifest already in the store (writeLayout puts it there). */
  manifestDigest: string;
  platform: ImagePlatform;
}

export interface WrittenIndex {
  indexDigest: string;
  index: OciIndex;
}

/**
 * Writes an OCI layout whose index.json names one image index (a multi-platform image): the index blob lists one
 * manifest per platform, and every manifest, config and layer blob is linked from the store.
 */
export async function writeIndexLayout(entries: IndexEntry[], dir: string, opts: { store: BlobStore; refName?: string; annotations?: Record<string, string> }): Promise<WrittenIndex> {
  const seen = new Set<string>();
  for (const e of entries) {
    const key = `${e.platform.os}/${e.platform.architecture}/${e.platform.variant ?? ''}`;
    if (seen.has(key)) throw new Error(`image index: platform ${key.replace(/\/$/, '')} is listed twice`);
    seen.add(key);
  }
  const blobs = new Set<string>();
  const manifests = [];
  for (const e of entries) {
    const bytes = await opts.store.ensure(e.manifestDigest).then(() => readFile(opts.store.path(e.manifestDigest))).catch(() => {
      throw new Error(`image index: manifest ${e.manifestDigest} is not in the blob store ${opts.store.dir}`);
    });
    const manifest = JSON.parse(bytes.toString('utf8')) as OciManifest;
    for (const d of [manifest.config, ...manifest.layers]) blobs.add(d.digest);
    blobs.add(e.manifestDigest);
    manifests.push({ mediaType: manifest.mediaType ?? MEDIA_TYPE_MANIFEST, digest: e.manifestDigest, size: bytes.length, platform: { ...e.platform } });
  }
  const index: OciIndex = {
    schemaVersion: 2, mediaType: MEDIA_TYPE_INDEX, manifests,
    ...(opts.annotations && Object.keys(opts.annotations).length ? { annotations: opts.annotations } : {}),
  };
  const indexBytes = Buffer.from(canonicalJson(index));
  const indexDigest = await opts.store.putBytes(indexBytes);
  blobs.add(indexDigest);
  const top: OciIndex = {
    schemaVersion: 2, mediaType: MEDIA_TYPE_INDEX,
    manifests: [{ mediaType: MEDIA_TYPE_INDEX, digest: indexDigest, size: indexBytes.length, ...(opts.refName ? { annotations: { [ANNOTATION_REF_NAME]: opts.refName } } : {}) }],
  };
  await writeLayoutDirectory(dir, { store: opts.store, blobs, index: top });
  return { indexDigest, index };
}

/**
 * Writes an OCI layout at `dir` from blobs already in the store (hard-linked) and its top index.json: into a
 * temporary sibling first, which then replaces `dir` (only an earlier layout or nothing may be there).
 */
export async function writeLayoutDirectory(dir: string, opts: { store: BlobStore; blobs: Iterable<string>; index: OciIndex }): Promise<void> {
  await mkdir(dirname(dir), { recursive: true });
  const temp = join(dirname(dir), `.${basename(dir)}.tmp-${randomBytes(6).toString('hex')}`);
  try {
    await mkdir(join(temp, 'blobs', 'sha256'), { recursive: true });
    for (const digest of new Set(opts.blobs)) await opts.store.linkInto(digest, join(temp, 'blobs', 'sha256', digestHex(digest)));
    await writeFile(join(temp, 'oci-layout'), canonicalJson({ imageLayoutVersion: OCI_LAYOUT_VERSION }));
    await writeFile(join(temp, 'index.json'), canonicalJson(opts.index));
    await replaceDirectory(temp, dir);
  } catch (error) {
    await rm(temp, { recursive: true, force: true });
    throw new Error(`writing OCI layout ${dir}: ${(error as Error).message}`);
  }
}
