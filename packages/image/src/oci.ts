/** OCI image-spec types and media types: the only vocabulary this package speaks. */

export const MEDIA_TYPE_LAYER_TAR = 'application/vnd.oci.image.layer.v1.tar';
export const MEDIA_TYPE_LAYER_TAR_GZIP = 'application/vnd.oci.image.layer.v1.tar+gzip';
export const MEDIA_TYPE_CONFIG = 'application/vnd.oci.image.config.v1+json';
export const MEDIA_TYPE_MANIFEST = 'application/vnd.oci.image.manifest.v1+json';
export const MEDIA_TYPE_INDEX = 'application/vnd.oci.image.index.v1+json';
/** Docker's media types, which docker-archives and older registries still carry. */
export const MEDIA_TYPE_DOCKER_LAYER_GZIP = 'application/vnd.docker.image.rootfs.diff.tar.gzip';
export const MEDIA_TYPE_DOCKER_MANIFEST = 'application/vnd.docker.distribution.manifest.v2+json';
export const MEDIA_TYPE_DOCKER_MANIFEST_LIST = 'application/vnd.docker.distribution.manifest.list.v2+json';

export const ANNOTATION_REF_NAME = 'org.opencontainers.image.ref.name';
export const OCI_LAYOUT_VERSION = '1.0.0';

export interface OciPlatform {
  os: string;
  architecture: string;
  variant?: string;
}

export interface OciDescriptor {
  mediaType: string;
  digest: string;
  size: number;
  annotations?: Record<string, string>;
  platform?: OciPlatform;
  /** OCI 1.1: the artifact type of the manifest it points at (an index or layout lists referrers with it). */
  artifactType?: string;
  /** OCI 1.1: small blobs (the empty config `{}`) carried inline, base64. */
  data?: string;
}

export interface OciManifest {
  schemaVersion: 2;
  mediaType?: string;
  /** OCI 1.1: what an artifact manifest is (application/vnd.cyclonedx+json for an SBOM). */
  artifactType?: string;
  config: OciDescriptor;
  layers: OciDescriptor[];
  /** OCI 1.1: the manifest an artifact refers to (an SBOM's image). */
  subject?: OciDescriptor;
  annotations?: Record<string, string>;
}

export interface OciIndex {
  schemaVersion: 2;
  mediaType?: string;
  manifests: OciDescriptor[];
  annotations?: Record<string, string>;
}

export interface OciHistory {
  created?: string;
  created_by?: string;
  comment?: string;
  empty_layer?: boolean;
}

export interface OciImageConfig {
  architecture: string;
  os: string;
  variant?: string;
  created?: string;
  config?: {
    Entrypoint?: string[];
    Cmd?: string[];
    Env?: string[];
    WorkingDir?: string;
    User?: string;
    Labels?: Record<string, string>;
    ExposedPorts?: Record<string, object>;
    /** Docker's (not in the OCI spec, which lets readers ignore it): durations in nanoseconds. */
    Healthcheck?: { Test: string[]; Interval?: number; Timeout?: number; StartPeriod?: number; StartInterval?: number; Retries?: number };
  };
  rootfs: { type: 'layers'; diff_ids: string[] };
  history?: OciHistory[];
}

/** The image layout's marker file, `oci-layout`. */
export interface OciLayoutFile {
  imageLayoutVersion: string;
}

/** One entry of a docker-archive's `manifest.json`. */
export interface DockerArchiveManifestEntry {
  Config: string;
  RepoTags: string[] | null;
  Layers: string[];
}

export function isLayerGzip(mediaType: string): boolean {
  return mediaType === MEDIA_TYPE_LAYER_TAR_GZIP || mediaType === MEDIA_TYPE_DOCKER_LAYER_GZIP;
}
