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
  /** Where it comes from, for package URLs in an SBOM: an npm package, a Debian package, a Python distribution. */
  type?: 'npm' | 'deb' | 'pypi' | 'generic';
}

/**
 * One thing the image carries, in the part and layer that carries it: a package (npm bundled into a bundle or
 * shipped in node_modules, Debian, Python), a binary or shared library (with the Debian package it came from), or
 * a weights file. Together they account for everything in the image; `pyml sbom` exports them.
 */
export interface Component {
  /** base, deps, weights, model, entrypoint. */
  part: string;
  /** The layer's name within its part (the deps layer, `model`, `entrypoint`). */
  layer: string;
  /** npm, deb, pypi: a package; generic: a package of no registry (node itself); file: a binary or library; weights: a weights file. */
  type: 'npm' | 'deb' | 'pypi' | 'generic' | 'file' | 'weights';
  name: string;
  version?: string;
  /** As the package declares it (an SPDX expression for npm and most Python packages; Debian's own short names). */
  license?: string;
  /** Subresource integrity of the package as published (npm lockfile's sha512-…). */
  integrity?: string;
  /** sha256 of the file's bytes, hex (files, weights). */
  sha256?: string;
  size?: number;
  /** Weights: the format the plugin that described them reported (onnx, tfjs-graph, …). */
  format?: string;
  /** Where in the image: the file itself, or the bundle or files a package's code is in. */
  paths?: string[];
  /** A file's Debian package (dpkg -S on the build machine), or a deb package's architecture. */
  debian?: { package: string; version: string; architecture: string };
  /** The plugin whose layer carries it. */
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
  /** Everything the image carries, part by part (written by pyml 0.1 builds from this version on). */
  components?: Component[];
  /** What the base is: its layers' digests and, for a registry base, its name and manifest digest. */
  base?: { name: string; digest?: string; layers: string[] };
  parts: PartRecord[];
  /** argv of the image's entrypoint (the config's Entrypoint) and the default socket it serves on. */
  entrypoint: { argv: string[]; socket: string };
  /** Options the runtime honours (batching etc.), from the config's `serving`. */
  serving?: { maxBatchSize?: number; maxBatchDelayMs?: number; maxConcurrency?: number };
  /** From the config's `deploy`: the model container's Kubernetes requests/limits, read by `pyml deploy k8s`. */
  deploy?: { resources?: { requests?: Record<string, string>; limits?: Record<string, string> } };
  build: { pyml: string; node: string; created: string; platform: { os: string; architecture: string } };
}
