import { canonicalJson } from './canonical-json.ts';
import type { Image } from './image.ts';
import { PART_ANNOTATION } from './pyml-format/parts.ts';
import { MEDIA_TYPE_CONFIG, MEDIA_TYPE_MANIFEST, type OciDescriptor, type OciImageConfig, type OciManifest } from './oci.ts';

/** An image's config and manifest, serialised canonically so their digests are reproducible. */
export interface ImageDocuments {
  config: OciImageConfig;
  configBytes: Buffer;
  configDigest: string;
  manifest: OciManifest;
  manifestBytes: Buffer;
  manifestDigest: string;
}

export function imageDocuments(image: Image, digestOf: (bytes: Buffer) => string): ImageDocuments {
  const config: OciImageConfig = {
    architecture: image.platform.architecture,
    os: image.platform.os,
    ...(image.platform.variant ? { variant: image.platform.variant } : {}),
    created: image.created,
    config: image.config,
    rootfs: { type: 'layers', diff_ids: image.layers.map((layer) => layer.diffId) },
    history: image.layers.map((layer) => ({
      created: image.created,
      created_by: 'pyml',
      // The part a layer is, when pyml annotated it, becomes its history comment.
      ...(layer.annotations[PART_ANNOTATION] ? { comment: layer.annotations[PART_ANNOTATION] } : {}),
    })),
  };
  const configBytes = Buffer.from(canonicalJson(config));
  const configDigest = digestOf(configBytes);
  const manifest: OciManifest = {
    schemaVersion: 2,
    mediaType: MEDIA_TYPE_MANIFEST,
    config: { mediaType: MEDIA_TYPE_CONFIG, digest: configDigest, size: configBytes.length },
    layers: image.layers.map((layer): OciDescriptor => ({
      mediaType: layer.mediaType,
      digest: layer.digest,
      size: layer.size,
      ...(Object.keys(layer.annotations).length ? { annotations: layer.annotations } : {}),
    })),
    ...(Object.keys(image.annotations).length ? { annotations: image.annotations } : {}),
  };
  const manifestBytes = Buffer.from(canonicalJson(manifest));
  return { config, configBytes, configDigest, manifest, manifestBytes, manifestDigest: digestOf(manifestBytes) };
}
