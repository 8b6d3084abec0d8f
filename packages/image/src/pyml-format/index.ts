/**
 * The pyml image format, on top of OCI: the parts and their annotations, the paths inside the image, `pyml.json`
 * (its type, its one reader and writer), the platform and timestamp conventions, and how images are described and
 * compared. Everything that reads or writes a pyml image goes through here rather than spelling these out again.
 */
export * from './paths.ts';
export * from './parts.ts';
export type { PymlManifest, PartRecord, DependencyEntry, Component } from './manifest.ts';
export { pymlManifestBytes, parsePymlManifest, readPymlManifest, requirePymlManifest } from './read-manifest.ts';
export { ociArchitecture, hostPlatform } from './platform.ts';
export { sourceDateEpochFromEnv } from './source-date-epoch.ts';
export { describeImage, type ImageDescription, type ImagePart } from './describe.ts';
export {
  diffImages, diffParts, diffSignature, diffDeps,
  type ImageDiff, type ImageSummary, type PartChange, type SignatureChange, type DepChange, type ChangeStatus,
} from './diff.ts';
