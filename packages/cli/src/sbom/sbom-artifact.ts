import { randomBytes } from 'node:crypto';
import { readFile, rename, rm, stat, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { canonicalJson, digestHex, MEDIA_TYPE_MANIFEST, sha256Digest, type OciDescriptor, type OciIndex, type OciManifest, type OpenedImage } from '@pyml/image';
import { layoutReferrers, listReferrers, looksLikeRegistryRef, parseReference } from '@pyml/registry';

/** OCI 1.1's empty descriptor: the config of an artifact that has none. */
const EMPTY_CONFIG = { mediaType: 'application/vnd.oci.empty.v1+json', digest: sha256Digest('{}'), size: 2, data: 'e30=' } as const;

/** An SBOM as an OCI artifact: the document as its one layer, the image as its `subject`. */
export interface SbomArtifact {
  manifest: OciManifest;
  manifestBytes: Buffer;
  descriptor: OciDescriptor & { artifactType: string };
  document: Buffer;
}

/** The artifact manifest for an SBOM of `subject` (the image manifest's descriptor). Same inputs, same bytes. */
export function sbomArtifact(document: Buffer, mediaType: string, fileName: string, subject: OciDescriptor, created: string): SbomArtifact {
  const annotations = { 'org.opencontainers.image.created': created };
  const manifest: OciManifest = {
    schemaVersion: 2,
    mediaType: MEDIA_TYPE_MANIFEST,
    artifactType: mediaType,
    config: { ...EMPTY_CONFIG },
    layers: [{ mediaType, digest: sha256Digest(document), size: document.length, annotations: { 'org.opencontainers.image.title': fileName } }],
    subject: { mediaType: subject.mediaType, digest: subject.digest, size: subject.size },
    annotations,
  };
  const manifestBytes = Buffer.from(canonicalJson(manifest));
  return {
    manifest, manifestBytes, document,
    descriptor: { mediaType: MEDIA_TYPE_MANIFEST, digest: sha256Digest(manifestBytes), size: manifestBytes.length, artifactType: mediaType, annotations },
  };
}

/**
 * Stores the artifact in an OCI layout beside the image it refers to: its blobs under blobs/sha256, and its
 * descriptor in index.json (replacing an earlier artifact of the same type for the same image). Each file is
 * written under a temporary name and renamed, index.json last, so a reader sees the old layout or the new one.
 */
export async function attachToLayout(layout: string, artifact: SbomArtifact): Promise<void> {
  const blobs: [string, Buffer][] = [
    [EMPTY_CONFIG.digest, Buffer.from('{}')],
    [artifact.manifest.layers[0]!.digest, artifact.document],
    [artifact.descriptor.digest, artifact.manifestBytes],
  ];
  for (const [digest, bytes] of blobs) await writeAtomically(path.join(layout, 'blobs', 'sha256', digestHex(digest)), bytes);
  const indexFile = path.join(layout, 'index.json');
  const index = JSON.parse(await readFile(indexFile, 'utf8')) as OciIndex;
  const subject = artifact.manifest.subject!.digest;
  const kept: OciDescriptor[] = [];
  for (const d of index.manifests) {
    if (d.artifactType === artifact.descriptor.artifactType && d.digest !== artifact.descriptor.digest) {
      const earlier = JSON.parse(await readFile(path.join(layout, 'blobs', 'sha256', digestHex(d.digest)), 'utf8').catch(() => '{}')) as OciManifest;
      if (earlier.subject?.digest === subject) continue;
    }
    if (d.digest !== artifact.descriptor.digest) kept.push(d);
  }
  await writeAtomically(indexFile, Buffer.from(canonicalJson({ ...index, manifests: [...kept, artifact.descriptor] })));
}

async function writeAtomically(file: string, bytes: Buffer): Promise<void> {
  const temp = `${file}.${randomBytes(6).toString('hex')}.tmp`;
  try {
    await writeFile(temp, bytes);
    await rename(temp, file);
  } finally {
    await rm(temp, { force: true });
  }
}

/** The SBOM artifacts an opened layout holds for its image (what `pyml inspect image` reports and `pyml push` sends). */
export async function attachedInLayout(source: OpenedImage): Promise<OciDescriptor[]> {
  return (await layoutReferrers(source)).filter((r) => SBOM_TYPES.has(r.descriptor.artifactType)).map((r) => r.descriptor);
}

export const SBOM_TYPES = new Set(['application/vnd.cyclonedx+json', 'application/spdx+json']);

/**
 * The SBOMs attached to an image: in a layout, the artifacts beside it in index.json; in a registry, what its
 * referrers API (or the sha256-<hex> tag index) lists for the image's digest. Tarballs and engines carry none.
 */
export async function attachedSboms(ref: string, source: OpenedImage): Promise<OciDescriptor[]> {
  const local = await stat(ref).then(() => true, () => false);
  if (!local && looksLikeRegistryRef(ref)) {
    const { descriptors } = await listReferrers(parseReference(ref), source.manifestDigest);
    return descriptors.filter((d) => d.artifactType && SBOM_TYPES.has(d.artifactType));
  }
  return attachedInLayout(source);
}
