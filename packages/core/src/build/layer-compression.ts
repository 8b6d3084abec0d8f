import type { PartName } from './build.ts';

/**
 * How each part's layer is stored. The choice depends on the part alone, never on what a machine has cached, so the
 * same inputs give the same image digest everywhere.
 *
 * The base (node and its libraries, ~100 MiB of tar) and the dependency layers (a framework's runtime, ~45 MiB for
 * onnxruntime-node) are stored as plain tar, as `docker build` keeps its own layers: gzip of those two was most of a
 * cold build (level 6: ~9.5 s and ~2.5 s of CPU on the bench machine; level 1 still ~3.1 s and ~1.3 s, more than
 * `docker build` of the same parts takes in all). They are the same for every project this pyml builds on a machine,
 * so a registry receives them once and skips them afterwards, and unpacking them (serve, batch) skips gunzip.
 * The model code and the entrypoint are small and gzip in milliseconds; the weights decide from a sample of their
 * bytes (random float32 does not compress, a sparse or quantised model may).
 */
export const PART_COMPRESSION: Record<PartName, 'auto' | 'gzip' | 'none'> = {
  base: 'none',
  deps: 'none',
  weights: 'auto',
  model: 'gzip',
  entrypoint: 'gzip',
};
