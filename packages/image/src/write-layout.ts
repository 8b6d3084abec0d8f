import { mkdir, open, rm, writeFile } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { pipeline } from 'node:stream/promises';
import type { BlobStore } from './blob-store.ts';
import { canonicalJson } from './canonical-json.ts';
import { replaceDirectory } from './replace-layout.ts';
import { digestHex } from './digest.ts';
import { imagePlatform, type Image } from './image.ts';
import { imageBlobs, type ImageBlob } from './image-blobs.ts';
import {
  ANNOTATION_REF_NAME, MEDIA_TYPE_INDEX, MEDIA_TYPE_MANIFEST, OCI_LAYOUT_VERSION,
  type OciIndex, type OciManifest,
} from './oci.ts';

export interface WriteLayoutOptions {
  /**
   * Blobs it holds are hard-linked into the layout rather than copied, and the config and manifest go into it
   * too (an image index is written from there). Without one, every blob is read from its layer.
   */
  store?: BlobStore;
  /** Written as the manifest descriptor's `org.opencontainers.image.ref.name` in index.json. */
  refName?: string;
}

export interface WrittenImage {
  manifestDigest: string;
  configDigest: string;
  manifest: OciManifest;
}

/** The small JSON files of a layout (`oci-layout`, `index.json`), shared by the layout and tarball writers. */
export function layoutMetadata(image: Image, refName?: string): { ociLayout: Buffer; index: Buffer } {
  const index: OciIndex = {
    schemaVersion: 2,
    mediaType: MEDIA_TYPE_INDEX,
    manifests: [{
      mediaType: image.manifest.mediaType ?? MEDIA_TYPE_MANIFEST,
      digest: image.manifestDigest,
      size: image.manifestBytes.length,
      ...(refName ? { annotations: { [ANNOTATION_REF_NAME]: refName } } : {}),
      platform: imagePlatform(image),
    }],
  };
  return {
    ociLayout: Buffer.from(canonicalJson({ imageLayoutVersion: OCI_LAYOUT_VERSION })),
    index: Buffer.from(canonicalJson(index)),
  };
}

/**
 * Writes an OCI image layout directory. The layout is assembled in a sibling temp dir and swapped in at the end,
 * so a failure (a layer that cannot be read, say) leaves any old image at `dir` untouched.
 */
export async function writeLayout(image: Image, dir: string, opts: WriteLayoutOptions = {}): Promise<WrittenImage> {
  const { store } = opts;
  if (store) {
    await store.putBytes(image.configBytes);
    await store.putBytes(image.manifestBytes);
  }
  const { ociLayout, index } = layoutMetadata(image, opts.refName);
  await mkdir(dirname(dir), { recursive: true });
  const temp = join(dirname(dir), `.${basename(dir)}.tmp-${randomBytes(6).toString('hex')}`);
  try {
    await mkdir(join(temp, 'blobs', 'sha256'), { recursive: true });
    for (const blob of imageBlobs(image)) await writeBlob(blob, join(temp, 'blobs', 'sha256', digestHex(blob.digest)), store);
    await writeFile(join(temp, 'oci-layout'), ociLayout);
    await writeFile(join(temp, 'index.json'), index);
    await replaceDirectory(temp, dir);
  } catch (error) {
    await rm(temp, { recursive: true, force: true });
    throw new Error(`writing OCI layout ${dir}: ${(error as Error).message}`);
  }
  return { manifestDigest: image.manifestDigest, configDigest: image.manifest.config.digest, manifest: image.manifest };
}

/** Hard-linked from the store when it holds the blob (copied across filesystems); else written from its bytes. */
async function writeBlob(blob: ImageBlob, file: string, store: BlobStore | undefined): Promise<void> {
  if (store && (await store.ensure(blob.digest))) return store.linkInto(blob.digest, file);
  if (blob.bytes) return writeFile(file, blob.bytes);
  // Opened before the pipeline runs: a file that createWriteStream opened late could appear after a failure's rm.
  await pipeline(await blob.open(), (await open(file, 'w')).createWriteStream());
}
