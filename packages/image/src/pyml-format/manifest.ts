import type { ContractKind, Signature } from '@pyml/contract';

/** One entry of the dependency manifest: what a dependency layer holds. */
export interface DependencyEntry {
  name: string;
  version: string;
  /** Subresource-integrity string (sha512-...) or sha256 digest, when known. */
  integrity?: string;
  license?: string;
  /** The plugin that contributed it. */
  plugin?: string;
}

/** One layer of the image as recorded in pyml.json (every part but the entrypoint, which holds this file). */
export interface PartRecord {
  part: string;
  name: string;
  digest: string;
  diffId: string;
  size: number;
  mediaType: string;
}

/** `/opt/pyml/pyml.json`: what the image is, read by the runtime, `serve`, `batch` and `inspect`. */
export interface PymlManifest {
  schemaVersion: 1;
  name: string;
  version: string;
  kind: ContractKind;
  signature: Signature;
  /** Model code bundle, relative to PYML_ROOT. */
  model: { entry: string };
  /** Weights directory relative to PYML_ROOT, and its files with sizes and digests. */
  weights: { dir: string; files: { name: string; size: number; digest?: string; format?: string; details?: Record<string, string | number> }[] };
  /** Runtime adapters by plugin name; entry relative to PYML_ROOT. */
  adapters: { name: string; entry: string }[];
  plugins: { name: string; version?: string }[];
  deps: DependencyEntry[];
  parts: PartRecord[];
  /** argv of the image's entrypoint (the config's Entrypoint) and the default socket it serves on. */
  entrypoint: { argv: string[]; socket: string };
  /** Options the runtime honours (batching etc.), from the config's `serving`. */
  serving?: { maxBatchSize?: number; maxBatchDelayMs?: number; maxConcurrency?: number };
  /** From the config's `deploy`: the model container's Kubernetes requests/limits, read by `pyml deploy k8s`. */
  deploy?: { resources?: { requests?: Record<string, string>; limits?: Record<string, string> } };
  build: { pyml: string; node: string; created: string; platform: { os: string; architecture: string } };
}
