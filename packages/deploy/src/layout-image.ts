import { mkdtemp, readFile, rm, stat, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { MEDIA_TYPE_INDEX, openImage, sha256Digest, type OpenedImage, type OciIndex } from '@pyml/image';

export interface LayoutImage {
  source: OpenedImage;
  /** What a registry tag for this layout points at: the manifest's digest, or the image index's for multi-platform. */
  digest: string;
  /** Set for a multi-platform layout: the platform whose image `source` is. */
  platform?: string;
}

/**
 * Opens a layout (or tarball) to deploy from. A multi-platform layout's index.json names one image index: its digest
 * is the one to deploy (each node pulls its own platform's image), and the model is read from the index's first
 * image, through a temporary view of the layout (its own index.json, the same blobs).
 */
export async function openLayoutImage(ref: string): Promise<LayoutImage> {
  const nested = await nestedIndex(ref);
  if (!nested) {
    const source = await openImage(ref);
    return { source, digest: source.manifestDigest };
  }
  const first = nested.index.manifests[0];
  if (!first) throw new Error(`image index ${nested.digest} lists no images`);
  const view = await mkdtemp(path.join(tmpdir(), 'pyml-deploy-view-'));
  try {
    await writeFile(path.join(view, 'oci-layout'), await readFile(path.join(ref, 'oci-layout')));
    await writeFile(path.join(view, 'index.json'), JSON.stringify({ schemaVersion: 2, mediaType: MEDIA_TYPE_INDEX, manifests: [first] }));
    await symlink(path.resolve(ref, 'blobs'), path.join(view, 'blobs'));
    const source = await openImage(view);
    const platform = first.platform ? `${first.platform.os}/${first.platform.architecture}` : undefined;
    return {
      source: { ...source, ref, close: async () => { await source.close(); await rm(view, { recursive: true, force: true }); } },
      digest: nested.digest,
      ...(platform ? { platform } : {}),
    };
  } catch (error) {
    await rm(view, { recursive: true, force: true });
    throw error;
  }
}

/** The image index a layout directory's index.json names as its only entry, checked against its digest. */
async function nestedIndex(ref: string): Promise<{ digest: string; index: OciIndex } | undefined> {
  if (!(await stat(ref).then((s) => s.isDirectory(), () => false))) return undefined;
  const top = JSON.parse(await readFile(path.join(ref, 'index.json'), 'utf8').catch(() => '{}')) as Partial<OciIndex>;
  const only = top.manifests?.length === 1 ? top.manifests[0] : undefined;
  if (!only || only.mediaType !== MEDIA_TYPE_INDEX || typeof only.digest !== 'string' || !/^sha256:[0-9a-f]{64}$/.test(only.digest)) return undefined;
  const bytes = await readFile(path.join(ref, 'blobs', 'sha256', only.digest.slice(7)));
  if (sha256Digest(bytes) !== only.digest) throw new Error(`${ref}: image index blob does not hash to ${only.digest}`);
  const index = JSON.parse(bytes.toString('utf8')) as OciIndex;
  if (!Array.isArray(index.manifests)) throw new Error(`${ref}: image index ${only.digest} has no "manifests" array`);
  return { digest: only.digest, index };
}
