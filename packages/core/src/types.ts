/**
 * Plugin API v1: every type a framework plugin touches. A plugin is a plain object with a `name` and hooks;
 * the build calls the hooks in this order (see docs/plugins.md):
 *
 *   configResolved   sequential   each plugin may inspect or adjust the resolved config
 *   transformWeights first        per weights file, the first plugin that converts it supplies the file shipped instead
 *   describeWeights  first        per weights file, the first plugin that recognises the format describes it
 *   defaultModel     first        when the config names no model file, a plugin may supply the model source
 *   bundleOptions    sequential   each plugin may add esbuild externals / plugins for the model code
 *   dependencies     parallel     dependency layers (files + deps-manifest entries), concatenated in plugin order
 *   runtimeAdapter   parallel     the adapter module the entrypoint loads inside the image
 *   buildEnd         parallel     after the image is written (or the build failed)
 *
 * Any error a hook throws reaches the user as a PluginError carrying the plugin's and the hook's names.
 */
import type { ContractKind, Signature, TensorSpec } from '@pyml/contract';
import type { DependencyEntry } from '@pyml/image/pyml-format';
import type { Plugin as EsbuildPlugin } from 'esbuild';
import type { FileEntry } from '@pyml/image';

export type { ContractKind, Signature, TensorSpec, DependencyEntry };

/** Target platform in OCI terms. */
export interface Platform {
  os: 'linux';
  architecture: 'amd64' | 'arm64';
  variant?: string;
}

/**
 * A plugin as a config names it. A TS/JS config usually passes the object its factory returns (`onnx()`); any
 * config, JSON and YAML too, may name it instead: a short name ('onnx' → @pyml/plugin-onnx or pyml-plugin-onnx), a
 * package name, a path relative to the config ('./plugins/my-plugin'), or [nameOrPath, options] to call the
 * package's default-exported factory with options.
 */
export type PluginEntry = PymlPlugin | string | [string, Record<string, unknown>];

/** The config as the user writes it in pyml.config.ts (validated against @pyml/core's schema/pyml.config.schema.json). */
export interface UserConfig {
  name: string;
  version: string;
  /** Model module (default-exports a TensorModel or DataFrameModel class). Optional when a plugin supplies one. */
  model?: string;
  kind?: ContractKind;
  weights?: string[];
  plugins?: PluginEntry[];
  signature?: Signature;
  image?: {
    /** 'pyml/node' (default: built from this machine's node) or a path to an OCI image layout directory. */
    base?: string;
    tags?: string[];
    labels?: Record<string, string>;
    platform?: string;
  };
  serving?: { maxBatchSize?: number; maxBatchDelayMs?: number; maxConcurrency?: number };
  /** For `pyml deploy k8s`: the model container's Kubernetes requests/limits, recorded in the image's pyml.json. */
  deploy?: { resources?: { requests?: Record<string, string | number>; limits?: Record<string, string | number> } };
}

/** The config after loading: paths absolute, defaults filled. */
export interface ResolvedConfig {
  /** Absolute path of the config file. */
  configFile: string;
  /** Project directory (the config file's directory). */
  root: string;
  name: string;
  version: string;
  kind: ContractKind;
  /** Absolute path of the model module, or undefined until a plugin's defaultModel supplies one. */
  model?: string;
  weights: string[];
  plugins: PymlPlugin[];
  signature?: Signature;
  image: { base: string; tags: string[]; labels: Record<string, string>; platform: Platform };
  serving: { maxBatchSize?: number; maxBatchDelayMs?: number; maxConcurrency?: number };
  deploy?: { resources?: { requests?: Record<string, string>; limits?: Record<string, string> } };
}

/** What every hook receives besides its own argument. */
export interface HookContext {
  config: ResolvedConfig;
  platform: Platform;
  /** Progress and diagnostics; quiet under --json. */
  log(message: string): void;
  /** A directory the plugin may write scratch files into (kept between builds, per plugin). */
  cacheDir: string;
}

/** A weights file handed to describeWeights. Read it as a stream: weights may be gigabytes. */
export interface WeightsFile {
  /** Absolute path on the build machine. */
  path: string;
  /** Base name as it will appear in the image's weights directory. */
  name: string;
  size: number;
  /** Set when the config's weights entry is a directory (a TF.js model dir): `path` is the directory, `name` its base name, `size` the total. Its files ship under weights/<name>/. */
  directory?: true;
}

/** The file shipped in place of a weights file (e.g. a pickled estimator converted to ONNX). */
export interface WeightsReplacement {
  /** Absolute path on the build machine (typically under ctx.cacheDir). */
  path: string;
  /** Base name in the image's weights directory. */
  name: string;
}

export interface WeightsDescription {
  /** Format name, e.g. 'onnx', 'tfjs-layers'. */
  format: string;
  /** Signature inferred from the file, when the format carries one. */
  signature?: Signature;
  /** Anything worth showing in `inspect` (opset, producer, ...). */
  details?: Record<string, string | number>;
}

/** Model source supplied by a plugin when the config has no `model`. */
export interface ModelSource {
  /** Absolute path of a module to bundle as the model code. */
  entry: string;
  kind: ContractKind;
}

export interface BundleOptions {
  /** Module specifiers left unbundled; they resolve at run time from the image's /opt/pyml/node_modules. */
  external: string[];
  plugins: EsbuildPlugin[];
  define: Record<string, string>;
}

/**
 * One file or directory in a layer: `path` (absolute inside the image) and exactly one of `source` (a file on the
 * build machine, streamed), `content`, `linkTarget` (a symlink) or `directory`; `mode` only decides the exec bit
 * (layers carry normalised modes). The image package's own entry type, so the two can never drift apart.
 */
export type LayerFile = FileEntry;

/** A dependency layer a plugin contributes: its files and the deps-manifest entries they make up. */
export interface DependencyLayer {
  /** Short name, shown in inspect (`onnxruntime-node`, `python`). */
  name: string;
  files: LayerFile[];
  entries: DependencyEntry[];
  /**
   * Key that identifies the layer's contents without reading them (e.g. package name + version + platform),
   * so a rebuild can reuse the cached layer without hashing hundreds of MB. Omit to key by file stats.
   */
  cacheKey?: string;
}

/** The adapter module the image's entrypoint loads; bundled with esbuild at build time. */
export interface RuntimeAdapter {
  /** Name models use with ctx.adapter(name). */
  name: string;
  /** Absolute path of the adapter module (TS or JS); its default export is an AdapterFactory. */
  entry: string;
  /** Specifiers left unbundled (provided by the plugin's dependency layer). */
  external?: string[];
}

/** What buildEnd receives: the written image, or the error that stopped writing it. */
export interface BuildSummary {
  /** Manifest digest of the image written; '' when writing failed. */
  digest: string;
  /** Absolute path of the OCI layout directory written. */
  layout?: string;
  /** Absolute path of the tarball, when one was asked for. */
  tar?: string;
  /** Set when writing the image failed (earlier failures end the build without buildEnd). */
  error?: Error;
}

/**
 * A framework plugin: a plain object with a `name` and hooks, returned by a factory the user calls in the config
 * (`plugins: [myFormat()]`). Hooks run in the order declared below; plugins in the config's list order. Kinds:
 * `first` (first non-null result wins), `sequential` (each sees the previous value), `parallel` (all at once,
 * results in plugin order). Every hook gets the HookContext last. The guide with examples is docs/plugins.md.
 */
export interface PymlPlugin {
  /** Unique within a config; errors read `[plugin NAME] HOOK: message`, deps entries carry it. */
  name: string;
  /** Plugin API version this plugin was written for. */
  apiVersion?: 1;
  /** Recorded in the image's pyml.json (`plugins`) and shown by `pyml inspect`. */
  version?: string;
  /** sequential, first of all: inspect the resolved config or adjust it in place; the return value is ignored. */
  configResolved?(config: ResolvedConfig, ctx: HookContext): void | Promise<void>;
  /** first, per weights file in config order: return a replacement file to ship instead (e.g. pickle → ONNX). */
  transformWeights?(file: WeightsFile, ctx: HookContext): WeightsReplacement | null | undefined | Promise<WeightsReplacement | null | undefined>;
  /** first, per (transformed) weights file: recognise and validate it (throw on a corrupt file), infer the signature; undefined if not yours. */
  describeWeights?(file: WeightsFile, ctx: HookContext): WeightsDescription | null | undefined | Promise<WeightsDescription | null | undefined>;
  /** first, only when the config has no `model`: the module to bundle as the model code. */
  defaultModel?(ctx: HookContext): ModelSource | null | undefined | Promise<ModelSource | null | undefined>;
  /** sequential, before the model code is bundled: add esbuild externals, plugins or defines; keep earlier ones. */
  bundleOptions?(options: BundleOptions, ctx: HookContext): BundleOptions | void | Promise<BundleOptions | void>;
  /** parallel: dependency layers for the image (one `deps` part each, in plugin order), with deps-manifest entries. */
  dependencies?(ctx: HookContext): DependencyLayer[] | Promise<DependencyLayer[]>;
  /** parallel: the adapter module the image's entrypoint loads at start-up; models get it as ctx.adapter(name). */
  runtimeAdapter?(ctx: HookContext): RuntimeAdapter | null | undefined | Promise<RuntimeAdapter | null | undefined>;
  /** parallel, last: after the image is written (or writing it failed); cannot change the image. */
  buildEnd?(summary: BuildSummary, ctx: HookContext): void | Promise<void>;
}

/**
 * How the driver runs each hook, as Rollup keeps FirstPluginHooks / SequentialPluginHooks / ParallelPluginHooks
 * beside its hooks: the kind is part of a hook's contract, so it is stated once, here, and the driver's methods
 * accept only hooks of their kind.
 */
/** The first non-null result in plugin order wins; later plugins are not called. */
export type FirstPluginHooks = 'transformWeights' | 'describeWeights' | 'defaultModel';
/** Each plugin in order sees the value the previous one returned (or left in place). */
export type SequentialPluginHooks = 'configResolved' | 'bundleOptions';
/** All plugins at once; results in plugin order. */
export type ParallelPluginHooks = 'dependencies' | 'runtimeAdapter' | 'buildEnd';
export type PluginHookName = FirstPluginHooks | SequentialPluginHooks | ParallelPluginHooks;
/** Hooks of PymlPlugin without a kind: `never` while the lists above are complete (a test holds it so). */
export type HooksWithoutKind = Exclude<keyof PymlPlugin, 'name' | 'apiVersion' | 'version' | PluginHookName>;
