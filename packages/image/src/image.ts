import { canonicalJson } from './canonical-json.ts';
import { sha256Digest } from './digest.ts';
import type { Layer } from './layer.ts';
import { PART_ANNOTATION } from './pyml-format/parts.ts';
import { MEDIA_TYPE_CONFIG, MEDIA_TYPE_MANIFEST, type OciDescriptor, type OciImageConfig, type OciManifest } from './oci.ts';

export interface ImagePlatform {
  os: string;
  architecture: string;
  variant?: string;
}

/**
 * One image, whether built here or read from a layout, a tarball, a registry pull or an engine: its config, its
 * manifest, the exact bytes their digests name, and layers that open their own bytes. Every writer takes this
 * value (as go-containerregistry's v1.Image). Immutable: compose with appendLayers / withConfig / withAnnotations.
 */
export interface Image {
  manifestDigest: string;
  manifest: OciManifest;
  /** The bytes `manifestDigest` names: canonical JSON for a built image, as stored for a read one. */
  manifestBytes: Buffer;
  /** The config file: platform, created, the runtime config, rootfs diffIds, history. */
  config: OciImageConfig;
  /** The bytes `manifest.config.digest` names. */
  configBytes: Buffer;
  /** Bottom to top. */
  layers: Layer[];
}

export function emptyImage(platform: ImagePlatform, created: string): Image {
  if (Number.isNaN(Date.parse(created))) throw new Error(`image created time is not RFC 3339: ${JSON.stringify(created)}`);
  return imageOf({
    architecture: platform.architecture,
    os: platform.os,
    ...(platform.variant ? { variant: platform.variant } : {}),
    created,
    config: {},
    rootfs: { type: 'layers', diff_ids: [] },
    history: [],
  }, [], {});
}

/** RFC 3339 for a SOURCE_DATE_EPOCH-style number of seconds. */
export function createdFromEpoch(seconds: number): string {
  return new Date(seconds * 1000).toISOString().replace(/\.000Z$/, 'Z');
}

/** The image with `layers` on top; each gets a history entry (its part, when pyml annotated it, as the comment). */
export function appendLayers(image: Image, ...layers: Layer[]): Image {
  const { config } = image;
  return imageOf({
    ...config,
    rootfs: { type: 'layers', diff_ids: [...config.rootfs.diff_ids, ...layers.map((layer) => layer.diffId)] },
    history: [...(config.history ?? []), ...layers.map((layer) => ({
      created: config.created,
      created_by: 'pyml',
      ...(layer.annotations[PART_ANNOTATION] ? { comment: layer.annotations[PART_ANNOTATION] } : {}),
    }))],
  }, [...image.layers, ...layers], image.manifest.annotations ?? {});
}

/** Shallow merge into the runtime config: a key given in the patch replaces the image's value (Env, Labels included). */
export function withConfig(image: Image, patch: NonNullable<OciImageConfig['config']>): Image {
  return imageOf({ ...image.config, config: { ...image.config.config, ...patch } }, image.layers, image.manifest.annotations ?? {});
}

/** Manifest annotations merged in. */
export function withAnnotations(image: Image, annotations: Record<string, string>): Image {
  return imageOf(image.config, image.layers, { ...image.manifest.annotations, ...annotations });
}

/** The platform the image's config names. */
export function imagePlatform(image: Image): ImagePlatform {
  const { os, architecture, variant } = image.config;
  return { os, architecture, ...(variant ? { variant } : {}) };
}

/** A built image: config and manifest serialised canonically, so the same inputs give the same digests. */
function imageOf(config: OciImageConfig, layers: Layer[], annotations: Record<string, string>): Image {
  const configBytes = Buffer.from(canonicalJson(config));
  const manifest: OciManifest = {
    schemaVersion: 2,
    mediaType: MEDIA_TYPE_MANIFEST,
    config: { mediaType: MEDIA_TYPE_CONFIG, digest: sha256Digest(configBytes), size: configBytes.length },
    layers: layers.map((layer): OciDescriptor => ({
      mediaType: layer.mediaType,
      digest: layer.digest,
      size: layer.size,
      ...(Object.keys(layer.annotations).length ? { annotations: layer.annotations } : {}),
    })),
    ...(Object.keys(annotations).length ? { annotations } : {}),
  };
  const manifestBytes = Buffer.from(canonicalJson(manifest));
  return Object.freeze({ manifestDigest: sha256Digest(manifestBytes), manifest, manifestBytes, config, configBytes, layers: Object.freeze([...layers]) as Layer[] });
}
