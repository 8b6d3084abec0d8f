import { mkdir, rm, writeFile } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import { randomBytes } from 'node:crypto';
import type { BlobStore } from './blob-store.ts';
import { canonicalJson } from './canonical-json.ts';
import { replaceDirectory } from './replace-layout.ts';
import { digestHex, sha256Digest } from './digest.ts';
import type { Image } from './image.ts';
import { imageDocuments, type ImageDocuments } from './image-json.ts';
import {
  ANNOTATION_REF_NAME, MEDIA_TYPE_INDEX, MEDIA_TYPE_MANIFEST, OCI_LAYOUT_VERSION,
  type OciIndex, type OciManifest,
} from './oci.ts';

export interface WriteLayoutOptions {
  store: BlobStore;
  /** Written as the manifest descriptor's `org.opencontainers.image.ref.name` in index.json. */
  refName?: string;
}

export interface WrittenImage {
  manifestDigest: string;
  configDigest: string;
  manifest: OciManifest;
}

/** The small JSON files of a layout (`oci-layout`, `index.json`), shared by the layout and tarball writers. */
export function layoutMetadata(image: Image, docs: ImageDocuments, refName?: string): { ociLayout: Buffer; index: Buffer } {
  const index: OciIndex = {
    schemaVersion: 2,
    mediaType: MEDIA_TYPE_INDEX,
    manifests: [{
      mediaType: MEDIA_TYPE_MANIFEST,
      digest: docs.manifestDigest,
      size: docs.manifestBytes.length,
      ...(refName ? { annotations: { [ANNOTATION_REF_NAME]: refName } } : {}),
      platform: { ...image.platform },
    }],
  };
  return {
    ociLayout: Buffer.from(canonicalJson({ imageLayoutVersion: OCI_LAYOUT_VERSION })),
    index: Buffer.from(canonicalJson(index)),
  };
}

/** Puts the config and manifest in the store and checks every layer blob is there: a layout must be complete. */
export async function prepareBlobs(image: Image, store: BlobStore): Promise<{ docs: ImageDocuments; blobs: string[] }> {
  const docs = imageDocuments(image, sha256Digest);
  await store.putBytes(docs.configBytes);
  await store.putBytes(docs.manifestBytes);
  for (const layer of image.layers) {
    if (!(await store.ensure(layer.digest))) {
      throw new Error(`layer ${layer.digest} is not in the blob store ${store.dir}`);
    }
  }
  // Deduplicated, in a fixed order: config, layers bottom to top, manifest.
  const blobs = [...new Set([docs.configDigest, ...image.layers.map((l) => l.digest), docs.manifestDigest])];
  return { docs, blobs };
}

/**
 * Writes an OCI image layout directory. Blobs are hard-linked from the store (copied across filesystems).
 * The layout is assembled in a sibling temp dir and swapped in at the end, so a failure leaves any old
 * image at `dir` untouched.
 */
export async function writeLayout(image: Image, dir: string, opts: WriteLayoutOptions): Promise<WrittenImage> {
  const { docs, blobs } = await prepareBlobs(image, opts.store);
  const { ociLayout, index } = layoutMetadata(image, docs, opts.refName);
  await mkdir(dirname(dir), { recursive: true });
  const temp = join(dirname(dir), `.${basename(dir)}.tmp-${randomBytes(6).toString('hex')}`);
  try {
    await mkdir(join(temp, 'blobs', 'sha256'), { recursive: true });
    for (const digest of blobs) await opts.store.linkInto(digest, join(temp, 'blobs', 'sha256', digestHex(digest)));
    await writeFile(join(temp, 'oci-layout'), ociLayout);
    await writeFile(join(temp, 'index.json'), index);
    await replaceDirectory(temp, dir);
  } catch (error) {
    await rm(temp, { recursive: true, force: true });
    throw new Error(`writing OCI layout ${dir}: ${(error as Error).message}`);
  }
  return { manifestDigest: docs.manifestDigest, configDigest: docs.configDigest, manifest: docs.manifest };
}
