import { MEDIA_TYPE_MANIFEST, openImage, type OpenedImage } from '@pyml/image';
import { requirePymlManifest } from '@pyml/image/pyml-format';
import { CYCLONEDX_MEDIA_TYPE, cycloneDx } from './cyclonedx.ts';
import { attachToLayout, sbomArtifact } from './sbom-artifact.ts';
import { sbomSubject } from './sbom-subject.ts';
import { SPDX_MEDIA_TYPE, spdx } from './spdx.ts';

export type SbomFormat = 'cyclonedx' | 'spdx';

export const SBOM_FORMATS: Record<SbomFormat, { mediaType: string; fileName: string }> = {
  cyclonedx: { mediaType: CYCLONEDX_MEDIA_TYPE, fileName: 'sbom.cdx.json' },
  spdx: { mediaType: SPDX_MEDIA_TYPE, fileName: 'sbom.spdx.json' },
};

/** An opened image's SBOM in `format`, as the bytes written (two-space JSON, newline-terminated). */
export async function sbomDocument(source: OpenedImage, format: SbomFormat): Promise<{ bytes: Buffer; created: string }> {
  const subject = sbomSubject(await requirePymlManifest(source), source.manifestDigest, source.ref);
  const document = format === 'cyclonedx' ? cycloneDx(subject) : spdx(subject);
  return { bytes: Buffer.from(`${JSON.stringify(document, null, 2)}\n`), created: subject.created };
}

/** `pyml build --sbom`: the CycloneDX SBOM of the image just written, stored in its layout as a referrer of it. */
export async function attachSbom(layout: string, format: SbomFormat = 'cyclonedx', platform?: { os: string; architecture: string }): Promise<{ digest: string; artifactType: string; size: number }> {
  const source = await openImage(layout, platform ? { platform } : {});
  try {
    const { bytes, created } = await sbomDocument(source, format);
    const { mediaType, fileName } = SBOM_FORMATS[format];
    const artifact = sbomArtifact(bytes, mediaType, fileName, { mediaType: source.manifest.mediaType ?? MEDIA_TYPE_MANIFEST, digest: source.manifestDigest, size: source.manifestBytes.length }, created);
    await attachToLayout(layout, artifact);
    return { digest: artifact.descriptor.digest, artifactType: mediaType, size: bytes.length };
  } finally {
    await source.close();
  }
}
