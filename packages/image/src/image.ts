import type { Layer } from './layer.ts';
import type { OciImageConfig } from './oci.ts';

export interface ImagePlatform {
  os: string;
  architecture: string;
  variant?: string;
}

/** An immutable image value: compose with appendLayers / withConfig / withAnnotations, then write it out. */
export interface Image {
  platform: ImagePlatform;
  config: NonNullable<OciImageConfig['config']>;
  /** RFC 3339, normally from SOURCE_DATE_EPOCH. */
  created: string;
  layers: Layer[];
  /** Manifest annotations. */
  annotations: Record<string, string>;
}

export function emptyImage(platform: ImagePlatform, created: string): Image {
  if (Number.isNaN(Date.parse(created))) throw new Error(`image created time is not RFC 3339: ${JSON.stringify(created)}`);
  return freeze({ platform: { ...platform }, config: {}, created, layers: [], annotations: {} });
}

/** RFC 3339 for a SOURCE_DATE_EPOCH-style number of seconds. */
export function createdFromEpoch(seconds: number): string {
  return new Date(seconds * 1000).toISOString().replace(/\.000Z$/, 'Z');
}

export function appendLayers(image: Image, ...layers: Layer[]): Image {
  return freeze({ ...image, layers: [...image.layers, ...layers] });
}

/** Shallow merge: a key given in the patch replaces the image's value (Env, Labels included). */
export function withConfig(image: Image, patch: Partial<Image['config']>): Image {
  return freeze({ ...image, config: { ...image.config, ...patch } });
}

export function withAnnotations(image: Image, annotations: Record<string, string>): Image {
  return freeze({ ...image, annotations: { ...image.annotations, ...annotations } });
}

function freeze(image: Image): Image {
  return Object.freeze(image);
}
