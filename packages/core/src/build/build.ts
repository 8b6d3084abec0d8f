import { readdir, stat } from 'node:fs/promises';
import path from 'node:path';
import { readFileSync } from 'node:fs';
import type { Signature } from '@pyml/contract';
import { BlobStore, buildLayer, refuseToReplaceNonLayout, writeLayout, writeTarball, type BuiltLayer, type Image } from '@pyml/image';
import {
  ADAPTERS_DIR, DEFAULT_SOCKET, ENTRYPOINT_PATH, MANIFEST_PATH, MODEL_DIR, WEIGHTS_DIR, ociArchitecture, partAnnotations,
  pymlManifestBytes, sourceDateEpochFromEnv, type Component, type DependencyEntry, type PartRecord, type PymlManifest,
} from '@pyml/image/pyml-format';
import { loadConfig } from '../config/load-config.ts';
import { BuildError, ConfigError } from '../errors.ts';
import { PluginDriver } from '../plugin-driver.ts';
import type { DependencyLayer, HookContext, LayerFile, Platform, ResolvedConfig, RuntimeAdapter } from '../types.ts';
import { bundleModel } from './bundle-model.ts';
import { bundleForImage, bundleRuntime, type ImageBundle } from './bundle-runtime.ts';
import type { BundledPackage } from './bundled-packages.ts';
import { imageComponents } from './image-components.ts';
import { checkDeclaredSignature } from './check-signature.ts';
import { resolveBase, type BaseImage } from './base-image.ts';
import { modelImage } from './image-config.ts';
import { addMissingSystemLibraries } from './native-closure.ts';
import { checkElfMachine } from './elf-machine.ts';
import { isNativeFile } from './shared-libraries.ts';
import { PART_COMPRESSION } from './layer-compression.ts';
import { fileSha256 } from './file-digests.ts';

export const PYML_VERSION = (JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version: string }).version;

export type PartName = 'base' | 'deps' | 'weights' | 'model' | 'entrypoint';

export interface BuildOptions {
  /** Project directory or config file. */
  project: string;
  /** OCI layout directory to write (default: <project>/.pyml/image). */
  out?: string;
  /** Also write a tarball (OCI layout + docker-archive manifest.json) here. */
  tar?: string;
  /** Blob cache (default: $PYML_CACHE_DIR or ~/.cache/pyml). */
  cacheDir?: string;
  /** Fixed timestamp for every file and the image (default: $SOURCE_DATE_EPOCH or 0). */
  sourceDateEpoch?: number;
  log?: (message: string) => void;
  onProgress?: (event: { part: string; bytes: number }) => void;
  /** Build for this platform instead of the config's image.platform (one image of a multi-platform build). */
  platform?: Platform;
  /** The blob store to build through (a multi-platform build shares one); default: one on `cacheDir`, holding its blobs. */
  store?: BlobStore;
}

export interface PartSummary {
  part: PartName;
  name: string;
  digest: string;
  diffId: string;
  size: number;
  mediaType: string;
  reused: boolean;
}

export interface BuildResult {
  name: string;
  version: string;
  digest: string;
  layout: string;
  tar?: string;
  refName: string;
  platform: string;
  parts: PartSummary[];
  signature: Signature;
  kind: 'tensor' | 'dataframe';
  seconds: number;
}

export { DEFAULT_SOCKET };

function epochFrom(options: BuildOptions): number {
  if (options.sourceDateEpoch !== undefined) return options.sourceDateEpoch;
  try {
    return sourceDateEpochFromEnv();
  } catch (error) {
    throw new ConfigError((error as Error).message);
  }
}

/** Checked before any work: the layout replaces whatever is at --out, which must not be someone's files. */
export async function refuseToReplaceOut(layout: string): Promise<void> {
  await refuseToReplaceNonLayout(layout).catch((error: Error) => {
    throw new ConfigError(`--out ${error.message}`, 'give --out a new path, an empty directory, or an earlier image layout');
  });
}

/** Builds the project into an OCI image: base | deps | weights | model code | entrypoint. */
export async function build(options: BuildOptions): Promise<BuildResult> {
  if (options.store) return buildThrough(options.store, options);
  // The store keeps every blob the build reuses or writes open until the image is written, so a concurrent
  // `pyml cache prune --blobs` cannot take them from under it.
  const store = new BlobStore(options.cacheDir, { hold: true });
  await store.sweepDeadTemps();
  try {
    return await buildThrough(store, options);
  } finally {
    await store.release();
  }
}

/** A built layer and the part it plays. */
interface NamedLayer {
  part: PartName;
  name: string;
  layer: BuiltLayer;
}

/** What the plugins and bundlers make of the project, before any layer is written. */
interface BuildInputs {
  signature: Signature;
  weightFiles: WeightFile[];
  model: { code: string; map: string; packages: BundledPackage[] };
  depLayers: DependencyLayer[];
  adapters: { spec: RuntimeAdapter; bundle: ImageBundle }[];
  runtime: ImageBundle;
}

type LayerOf = (part: PartName, name: string, files: LayerFile[], cacheKey?: string) => Promise<BuiltLayer>;

async function buildThrough(store: BlobStore, options: BuildOptions): Promise<BuildResult> {
  const started = performance.now();
  const log = options.log ?? (() => {});
  const { config, epoch, layout } = await prepareBuild(options);
  const ctx: HookContext = { config, platform: config.image.platform, log, cacheDir: path.join(store.dir, 'plugins') };
  const driver = new PluginDriver(config.plugins, ctx);
  await driver.sequential('configResolved', config);

  const layerOf = layerBuilder(store, epoch, options.onProgress);
  // The base needs nothing from the plugins or the bundles: on an empty cache its layer (node, ~100 MiB to tar
  // and hash) is written while esbuild and the plugins work. So is the weights layer, often the biggest, from the
  // moment the files to ship are known, while the plugins describe them (an ONNX trial load, say). All settle
  // before an error is thrown (they may be writing blobs).
  const shipped = shippedWeights(config, driver);
  const weightsLayer = shipped.then((entries) => layerOf('weights', 'weights', weightsLayerFiles(weightFilesOf(entries))));
  const weightsDescribed = shipped.then((entries) => describeWeights(config, driver, entries));
  // The dependency manifest's weights digests (fileSha256, cached by stats under the directory imageComponents
  // reads) read the weights a second time: hashed beside the layer rather than after it.
  const weightsHashed = shipped.then((entries) => Promise.all(weightFilesOf(entries).map((w) => fileSha256(w.path, path.join(store.dir, 'sha256')))));
  const [[[inputs, weights]], base] = await bothSettled(
    bothSettled(bothSettled(gatherInputs(config, driver, weightsDescribed, path.join(store.dir, 'bundles'), log), weightsLayer), weightsHashed),
    resolveBase(config, store, epoch, log),
  );
  await addSystemLibraries(inputs.depLayers, base, store, epoch, config.image.platform);
  log('writing layers');
  // The dependency manifest (dpkg's answers, weights hashes; cached per machine) is made while the layers are written.
  const [named, components] = await Promise.all([contentLayers(layerOf, base, inputs, weights), componentsOf(base, inputs, store.dir)]);
  const created = new Date(epoch * 1000).toISOString();
  const manifest = pymlManifest(config, base, inputs, named, created, components);
  named.push({ part: 'entrypoint', name: 'entrypoint', layer: await layerOf('entrypoint', 'entrypoint', entrypointFiles(inputs, manifest)) });

  const image = modelImage(config, base, named.map((n) => n.layer), manifest.entrypoint.argv, created, PYML_VERSION);
  log(`writing ${layout}`);
  const digest = await writeImage(image, layout, store, config, options.tar, driver, log);
  const { platform } = config.image;
  return {
    name: config.name,
    version: config.version,
    digest,
    layout,
    ...(options.tar ? { tar: path.resolve(options.tar) } : {}),
    refName: `${config.name}:${config.version}`,
    platform: `${platform.os}/${platform.architecture}`,
    parts: named.map(({ part, name, layer }) => ({ part, name, digest: layer.digest, diffId: layer.diffId, size: layer.size, mediaType: layer.mediaType, reused: layer.reused })),
    signature: inputs.signature,
    kind: config.kind,
    seconds: (performance.now() - started) / 1000,
  };
}

/** Both results; when either fails, its error, but only once the other has finished too (it may be writing a blob). */
async function bothSettled<A, B>(a: Promise<A>, b: Promise<B>): Promise<[A, B]> {
  const [x, y] = await Promise.allSettled([a, b]);
  if (x.status === 'rejected') throw x.reason;
  if (y.status === 'rejected') throw y.reason;
  return [x.value, y.value];
}

/** The config, the timestamp and the checked output paths, before any work. */
async function prepareBuild(options: BuildOptions): Promise<{ config: ResolvedConfig; epoch: number; layout: string }> {
  const config = await loadConfig(options.project);
  if (options.platform) config.image.platform = options.platform;
  const epoch = epochFrom(options);
  const layout = path.resolve(options.out ?? path.join(config.root, '.pyml', 'image'));
  await refuseToReplaceOut(layout);
  if (options.tar && (await stat(options.tar).then((s) => s.isDirectory(), () => false))) {
    throw new ConfigError(`--tar ${path.resolve(options.tar)} is a directory`, 'give --tar the path of the tarball file to write, e.g. image.tar');
  }
  return { config, epoch, layout };
}

/** The plugins' hooks in their documented order, and the bundles: everything the layers are made of. */
async function gatherInputs(config: ResolvedConfig, driver: PluginDriver, weightsDescribed: ReturnType<typeof describeWeights>, codeCache: string, log: (message: string) => void): Promise<BuildInputs> {
  const { signature, weightFiles } = await weightsDescribed;
  const modelEntry = await resolveModelEntry(config, driver);
  const bundleOptions = await driver.sequential('bundleOptions', { external: [], plugins: [], define: {} });
  log('bundling model code');
  const model = await bundleModel(modelEntry, bundleOptions, config.kind, config.root, path.join(config.root, '.pyml', 'tmp'), codeCache);
  const depLayers = (await driver.parallel('dependencies')).flatMap(({ plugin, result }) =>
    result.map((layer) => ({ ...layer, entries: layer.entries.map((e) => ({ plugin: plugin.name, ...e })) })));
  const adapterSpecs = (await driver.parallel('runtimeAdapter')).map((r) => r.result);
  const [runtimeCode, adapterCodes] = await Promise.all([
    bundleRuntime(codeCache),
    Promise.all(adapterSpecs.map((a) => bundleForImage(a.entry, a.external ?? [], codeCache))),
  ]);
  return { signature, weightFiles, model, depLayers, adapters: adapterSpecs.map((spec, i) => ({ spec, bundle: adapterCodes[i]! })), runtime: runtimeCode };
}

/** The system libraries the deps' native files load and the base lacks, added to those deps layers. */
async function addSystemLibraries(depLayers: DependencyLayer[], base: BaseImage, store: BlobStore, epoch: number, platform: Platform): Promise<void> {
  // A layer the store already holds under its cache key carries its system libraries: skip the ldd scan (seconds for a Python env).
  const uncached: DependencyLayer[] = [];
  for (const d of depLayers) if (!d.cacheKey || !(await store.lookup(pluginLayerKey(d.cacheKey, 'deps', epoch)))) uncached.push(d);
  // ldd can only read this machine's binaries; for another architecture the base must carry the libraries.
  if (platform.architecture === ociArchitecture()) await addMissingSystemLibraries(uncached, base.libraries, path.join(store.dir, 'ldd'));
  // Every native file is for the image's architecture (another architecture's image checks every layer, cached or not).
  for (const d of platform.architecture === ociArchitecture() ? uncached : depLayers) {
    for (const f of d.files) if (f.source && isNativeFile(f.path)) await checkElfMachine(f.source, platform.architecture, `deps layer ${d.name}: ${f.path}`);
  }
}

/** A plugin's cache key for a layer, plus what else decides its bytes: the timestamp and the part's compression. */
function pluginLayerKey(cacheKey: string, part: PartName, epoch: number): string {
  return `${cacheKey}|epoch=${epoch}|compression=${PART_COMPRESSION[part]}`;
}

/** Writes one layer of a part, named, annotated and compressed as that part, keyed by epoch when the plugin gave a key. */
function layerBuilder(store: BlobStore, epoch: number, onProgress: BuildOptions['onProgress']): LayerOf {
  return (part, name, files, cacheKey) => buildLayer(files, {
    store, compression: PART_COMPRESSION[part], cacheKey: cacheKey ? pluginLayerKey(cacheKey, part, epoch) : undefined, sourceDateEpoch: epoch,
    annotations: partAnnotations(part, name), onProgress: (bytes) => onProgress?.({ part, bytes }),
  });
}

/** base | deps | weights | model: every layer but the entrypoint's, which holds pyml.json describing these. */
async function contentLayers(layerOf: LayerOf, base: BaseImage, inputs: BuildInputs, weightsLayer: BuiltLayer): Promise<NamedLayer[]> {
  const { depLayers, model } = inputs;
  const [depBuilt, modelLayer] = await Promise.all([
    Promise.all(depLayers.map((d) => layerOf('deps', d.name, d.files, d.cacheKey))),
    layerOf('model', 'model', [
      { path: `${MODEL_DIR}/model.mjs`, content: `${model.code}//# sourceMappingURL=model.mjs.map\n` },
      { path: `${MODEL_DIR}/model.mjs.map`, content: model.map },
    ]),
  ]);
  return [
    ...base.layers.map((layer, i) => ({ part: 'base' as const, name: base.layers.length > 1 ? `base-${i}` : 'base', layer })),
    ...depBuilt.map((layer, i) => ({ part: 'deps' as const, name: depLayers[i]!.name, layer })),
    { part: 'weights', name: 'weights', layer: weightsLayer },
    { part: 'model', name: 'model', layer: modelLayer },
  ];
}

function weightsLayerFiles(weightFiles: WeightFile[]): LayerFile[] {
  // Subdirectories of weights directories (a model directory such as weights/model/), parents first.
  const subdirectories = [...new Set(weightFiles.flatMap((w) => w.name.split('/').slice(0, -1).map((_, i, parts) => parts.slice(0, i + 1).join('/'))))].sort();
  return [
    { path: WEIGHTS_DIR, directory: true },
    ...subdirectories.map((d) => ({ path: `${WEIGHTS_DIR}/${d}`, directory: true as const })),
    ...weightFiles.map((w) => ({ path: `${WEIGHTS_DIR}/${w.name}`, source: w.path, mode: 0o644 })),
  ];
}

function componentsOf(base: BaseImage, inputs: BuildInputs, cacheDir: string): Promise<Component[]> {
  return imageComponents({
    base, depLayers: inputs.depLayers, weightFiles: inputs.weightFiles, modelPackages: inputs.model.packages,
    runtimePackages: inputs.runtime.packages, adapters: inputs.adapters.map(({ spec, bundle }) => ({ name: spec.name, packages: bundle.packages })), cacheDir,
  });
}

/** pyml.json: what the image is, for the runtime, serve, batch, inspect and deploy. */
function pymlManifest(config: ResolvedConfig, base: BaseImage, inputs: BuildInputs, named: NamedLayer[], created: string, components: Component[]): PymlManifest {
  const { platform } = config.image;
  const parts: PartRecord[] = named.map(({ part, name, layer }) => ({
    part, name, digest: layer.digest, diffId: layer.diffId, size: layer.size, mediaType: layer.mediaType,
  }));
  return {
    schemaVersion: 1,
    name: config.name,
    version: config.version,
    kind: config.kind,
    signature: inputs.signature,
    model: { entry: 'model/model.mjs' },
    // Each file's sha256 is in `components` (kept per machine by the file's stats, so a rebuild reads no weights twice).
    weights: { dir: 'weights', files: inputs.weightFiles.map(({ name, size, format, details }) => ({ name, size, ...(format ? { format } : {}), ...(details ? { details } : {}) })) },
    adapters: inputs.adapters.map(({ spec }) => ({ name: spec.name, entry: `adapters/${spec.name}.mjs` })),
    plugins: config.plugins.map((p) => ({ name: p.name, ...(p.version ? { version: p.version } : {}) })),
    deps: inputs.depLayers.flatMap((d) => d.entries as DependencyEntry[]),
    components,
    base: { ...base.identity, layers: base.layers.map((l) => l.digest) },
    parts,
    entrypoint: { argv: [base.nodePath, ENTRYPOINT_PATH], socket: DEFAULT_SOCKET },
    ...(Object.keys(config.serving).length ? { serving: config.serving } : {}),
    ...(config.deploy?.resources ? { deploy: { resources: config.deploy.resources } } : {}),
    build: { pyml: PYML_VERSION, node: base.nodeVersion, created, platform: { os: platform.os, architecture: platform.architecture } },
  };
}

/** The entrypoint part: the runtime bundle, the plugins' adapters, and pyml.json. */
function entrypointFiles(inputs: BuildInputs, manifest: PymlManifest): LayerFile[] {
  return [
    { path: ENTRYPOINT_PATH, content: inputs.runtime.code },
    ...inputs.adapters.map(({ spec, bundle }) => ({ path: `${ADAPTERS_DIR}/${spec.name}.mjs`, content: bundle.code })),
    { path: MANIFEST_PATH, content: pymlManifestBytes(manifest) },
  ];
}

/** The layout (and tarball), then buildEnd with the digest, or with the error that stopped the writing. */
async function writeImage(image: Image, layout: string, store: BlobStore, config: ResolvedConfig, tar: string | undefined, driver: PluginDriver, log: (message: string) => void): Promise<string> {
  let digest: string;
  try {
    ({ manifestDigest: digest } = await writeLayout(image, layout, { store, refName: config.version }));
    if (tar) {
      log(`writing ${tar}`);
      await writeTarball(image, path.resolve(tar), { refName: config.version, repoTags: [`${config.name}:${config.version}`, ...config.image.tags.map((t) => `${config.name}:${t}`)] });
    }
  } catch (err) {
    await driver.parallel('buildEnd', { digest: '', error: err as Error });
    throw err;
  }
  await driver.parallel('buildEnd', { digest, layout, tar });
  return digest;
}

/** A file of the weights part: where it is on this machine, its name under weights/, and what a plugin said of it. */
interface WeightFile {
  path: string;
  name: string;
  size: number;
  format?: string;
  details?: Record<string, string | number>;
}

/** A weights entry of the config as it will ship: a file (perhaps converted by a plugin) or a model directory. */
type ShippedEntry =
  | { directory: false; configPath: string; file: WeightFile }
  | { directory: true; configPath: string; name: string; size: number; files: WeightFile[] };

/**
 * The files the weights part will hold, in config order: each entry checked, model directories listed, and every
 * file through transformWeights (which the docs call before any describeWeights). All the weights layer needs.
 */
async function shippedWeights(config: ResolvedConfig, driver: PluginDriver): Promise<ShippedEntry[]> {
  const entries: ShippedEntry[] = [];
  const names = new Set<string>();
  for (const [i, file] of config.weights.entries()) {
    const s = await stat(file).catch(() => undefined);
    if (!s || !(s.isFile() || s.isDirectory())) {
      throw new ConfigError(`${config.configFile}: weights[${i}]: ${path.relative(config.root, file) || file} ${s ? 'is not a file or directory' : 'does not exist'}`,
        'weights are paths relative to the config file');
    }
    if (s.isDirectory()) {
      // A model directory (e.g. TF.js model.json + shards): all its files, kept as a subdirectory of the weights dir.
      const name = path.basename(file);
      if (names.has(name)) throw new ConfigError(`${config.configFile}: weights[${i}]: two weights entries are named ${name}`, 'weights share one directory in the image: give them distinct names');
      names.add(name);
      const files = await filesUnder(file);
      if (files.length === 0) throw new ConfigError(`${config.configFile}: weights[${i}]: directory ${path.relative(config.root, file) || file} is empty`);
      const listed: WeightFile[] = [];
      for (const rel of files) listed.push({ path: path.join(file, rel), name: `${name}/${rel}`, size: (await stat(path.join(file, rel))).size });
      entries.push({ directory: true, configPath: file, name, size: listed.reduce((n, f) => n + f.size, 0), files: listed });
      continue;
    }
    let shipped = { path: file, name: path.basename(file), size: s.size };
    // A plugin may convert the file (pickle → ONNX); the converted file is described and shipped instead.
    const replaced = await driver.first('transformWeights', shipped);
    if (replaced) {
      const r = await stat(replaced.result.path).catch(() => undefined);
      if (!r?.isFile()) throw new BuildError(`plugin ${replaced.plugin.name}: transformWeights returned ${replaced.result.path}, which is not a file`);
      shipped = { path: replaced.result.path, name: replaced.result.name, size: r.size };
    }
    if (names.has(shipped.name)) throw new ConfigError(`${config.configFile}: weights[${i}]: two weights files are named ${shipped.name}`, 'weights share one directory in the image: give them distinct names');
    names.add(shipped.name);
    entries.push({ directory: false, configPath: file, file: shipped });
  }
  return entries;
}

/** Every shipped weights file, as the weights layer lays them out. */
function weightFilesOf(entries: ShippedEntry[]): WeightFile[] {
  return entries.flatMap((e) => (e.directory ? e.files : [e.file]));
}

/** describeWeights for each shipped entry, in config order: formats and details per file, and the signature. */
async function describeWeights(config: ResolvedConfig, driver: PluginDriver, entries: ShippedEntry[]): Promise<{ signature: Signature; weightFiles: WeightFile[] }> {
  let inferred: { signature: Signature; file: string } | undefined;
  for (const entry of entries) {
    const described = entry.directory
      ? await driver.first('describeWeights', { path: entry.configPath, name: entry.name, size: entry.size, directory: true })
      : await driver.first('describeWeights', entry.file);
    if (!entry.directory && described) {
      entry.file = { ...entry.file, format: described.result.format, ...(described.result.details ? { details: described.result.details } : {}) };
    }
    if (described?.result.signature && !inferred) inferred = { signature: described.result.signature, file: path.relative(config.root, entry.configPath) };
  }
  if (config.signature && inferred) checkDeclaredSignature(config.signature, inferred.signature, config.configFile, inferred.file);
  const signature = config.signature ?? inferred?.signature;
  if (!signature) {
    throw new ConfigError(`${config.configFile}: no signature: none is declared and no plugin could read one from the weights`,
      'declare `signature: { inputs: [{ name, dtype, shape }], outputs: [...] }` in the config');
  }
  return { signature, weightFiles: weightFilesOf(entries) };
}

/** Regular files under `dir`, relative with '/' separators, sorted (so the weights layer is reproducible). */
async function filesUnder(dir: string, prefix = ''): Promise<string[]> {
  const out: string[] = [];
  for (const entry of (await readdir(path.join(dir, prefix), { withFileTypes: true })).sort((a, b) => (a.name < b.name ? -1 : 1))) {
    const rel = prefix ? `${prefix}/${entry.name}` : entry.name;
    if (entry.isDirectory()) out.push(...await filesUnder(dir, rel));
    else if (entry.isFile()) out.push(rel);
    else throw new ConfigError(`weights directory ${dir}: ${rel} is neither a file nor a directory`, 'weights directories hold regular files only');
  }
  return out;
}

async function resolveModelEntry(config: ResolvedConfig, driver: PluginDriver): Promise<string> {
  if (config.model) {
    const s = await stat(config.model).catch(() => undefined);
    if (!s?.isFile()) throw new ConfigError(`${config.configFile}: model: ${path.relative(config.root, config.model)} does not exist`, 'model is the path of your model module, relative to the config');
    return config.model;
  }
  const supplied = await driver.first('defaultModel');
  if (!supplied) {
    throw new ConfigError(`${config.configFile}: model is missing and no plugin supplies a default model`,
      "set model: './src/model.ts' to a module that default-exports your model class");
  }
  return supplied.result.entry;
}

export type { DependencyLayer };
export type { BaseImage };
