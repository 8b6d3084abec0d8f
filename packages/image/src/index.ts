/** @pyml/image: builds, writes and reads OCI images. Knows OCI only: no config, no plugins. */
export * from './oci.ts';
export { BlobStore } from './blob-store.ts';
export { pymlCacheDir } from './cache-dir.ts';
export type { FileEntry } from './file-entry.ts';
export { directoryEntries } from './directory-entries.ts';
export { layerRecord, type Layer, type LayerRecord } from './layer.ts';
export { storedLayer } from './stored-layer.ts';
export { buildLayer, defaultSourceDateEpoch, type BuiltLayer, type LayerMediaType, type BuildLayerOptions } from './build-layer.ts';
export { estimateCompression, type CompressionEstimate } from './compression-choice.ts';
export {
  emptyImage, appendLayers, withConfig, withAnnotations, createdFromEpoch, imagePlatform, type Image, type ImagePlatform,
} from './image.ts';
export { writeLayout, type WriteLayoutOptions, type WrittenImage } from './write-layout.ts';
export { imageTarball, writeTarball, type WriteTarballOptions } from './write-tarball.ts';
export { refuseToReplaceNonLayout, replaceDirectory } from './replace-layout.ts';
export { writeIndexLayout, writeLayoutDirectory, type IndexEntry, type WrittenIndex } from './write-index.ts';
export { openImage, type OpenedImage, type VerifyResult, type OpenImageOptions } from './open-image.ts';
export { unpack, type UnpackOptions, type UnpackResult } from './unpack.ts';
export {
  DEFAULT_UNPACK_LIMITS, MAX_LAYER_EXPANSION_ENV, MAX_UNPACKED_BYTES_ENV, parseByteSize, unpackLimitsFromEnv, type UnpackLimits,
} from './tar-entry-rules.ts';
export type { UnsafeEntryReport } from './entry-safety-scan.ts';
export { SharedFiles, type SharedFileKey, type PruneResult } from './shared-files.ts';
export { canonicalJson } from './canonical-json.ts';
export { sha256Digest, isDigest, digestHex } from './digest.ts';
export { listCacheEntries, markUsed, decidePrune, removeEntry, type CacheEntry, type PruneDecision } from './cache-entries.ts';
export { diskUsage } from './disk-usage.ts';
export { ownedPrefix, processAlive, removeDeadRunsLeftovers } from './dead-runs-leftovers.ts';
export { fileInLayers, layerEntries, type LayerEntrySummary } from './layer-entries.ts';
