import type { OpenedImage } from '../open-image.ts';
import type { PymlManifest } from './manifest.ts';
import { PART_ANNOTATION, PART_NAME_ANNOTATION } from './parts.ts';
import { readPymlManifest } from './read-manifest.ts';

export interface ImagePart {
  part: string;
  name: string;
  digest: string;
  diffId?: string;
  size: number;
  mediaType: string;
}

/** What `pyml inspect image` shows: everything a reviewer or CI needs to know about an image. */
export interface ImageDescription {
  ref: string;
  source: string;
  name?: string;
  version?: string;
  digest: string;
  platform: string;
  created?: string;
  kind?: string;
  parts: ImagePart[];
  totalSize: number;
  signature?: PymlManifest['signature'];
  weights: PymlManifest['weights']['files'];
  deps: PymlManifest['deps'];
  /** Everything the image carries, part by part (images built before pyml recorded it have none). */
  components?: PymlManifest['components'];
  /** What the base is (pyml/node or the image it was imported from) and its layers. */
  base?: PymlManifest['base'];
  plugins: PymlManifest['plugins'];
  entrypoint: { entrypoint: string[]; cmd: string[]; env: string[]; workingDir?: string };
  labels: Record<string, string>;
  annotations: Record<string, string>;
  build?: PymlManifest['build'];
  pyml: boolean;
  /** When the image is one platform's of a multi-platform image index: the index and all its platforms. */
  index?: { digest: string; platforms: { platform: string; digest: string; size: number }[] };
}

export async function describeImage(source: OpenedImage): Promise<ImageDescription> {
  const manifest = await readPymlManifest(source);
  const cfg = source.config;
  const diffIds = cfg.rootfs?.diff_ids ?? [];
  const parts = source.layers.map((d, i) => ({
    part: d.annotations?.[PART_ANNOTATION] ?? 'layer',
    name: d.annotations?.[PART_NAME_ANNOTATION] ?? `layer-${i}`,
    digest: d.digest,
    diffId: diffIds[i],
    size: d.size,
    mediaType: d.mediaType,
  }));
  return {
    ref: source.ref,
    source: source.kind,
    name: manifest?.name ?? cfg.config?.Labels?.['org.opencontainers.image.title'],
    version: manifest?.version ?? cfg.config?.Labels?.['org.opencontainers.image.version'],
    digest: source.manifestDigest,
    platform: `${cfg.os}/${cfg.architecture}${cfg.variant ? `/${cfg.variant}` : ''}`,
    created: cfg.created,
    kind: manifest?.kind,
    parts,
    totalSize: parts.reduce((n, p) => n + p.size, 0),
    signature: manifest?.signature,
    weights: manifest?.weights.files ?? [],
    deps: manifest?.deps ?? [],
    ...(manifest?.components ? { components: manifest.components } : {}),
    ...(manifest?.base ? { base: manifest.base } : {}),
    plugins: manifest?.plugins ?? [],
    entrypoint: { entrypoint: cfg.config?.Entrypoint ?? [], cmd: cfg.config?.Cmd ?? [], env: cfg.config?.Env ?? [], workingDir: cfg.config?.WorkingDir },
    labels: cfg.config?.Labels ?? {},
    annotations: source.manifest.annotations ?? {},
    build: manifest?.build,
    pyml: Boolean(manifest),
    ...(source.index ? {
      index: {
        digest: source.index.digest,
        platforms: source.index.manifests.map((m) => ({
          platform: m.platform ? `${m.platform.os}/${m.platform.architecture}${m.platform.variant ? `/${m.platform.variant}` : ''}` : 'unknown',
          digest: m.digest, size: m.size,
        })),
      },
    } : {}),
  };
}
