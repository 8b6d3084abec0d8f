/**
 * __PACKAGE__: a pyml framework plugin. It serves linear models stored as JSON (`*.linear.json`:
 * {"weights": [[...], ...], "bias": [...]}, weights [inputs][outputs]) — a stand-in format: replace
 * linear-format.ts, adapter.ts and default-model.ts with your framework's, keep the shape.
 *
 *   import __PLUGIN_ID__ from '__PACKAGE__';
 *   export default defineConfig({ name, version, weights: ['./weights/model.linear.json'], plugins: [__PLUGIN_ID__()] });
 *
 * Every hook of the plugin API v1 is here, in the order the build calls them (docs: pyml's docs/plugins.md).
 * Only types come from '@pyml/core/types'; the model contract comes from '@pyml/contract'.
 */
import { mkdir, readFile, writeFile, rename } from 'node:fs/promises';
import { dirname, extname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type {
  BundleOptions, BuildSummary, DependencyLayer, HookContext, ModelSource, PymlPlugin, ResolvedConfig, RuntimeAdapter,
  WeightsDescription, WeightsFile, WeightsReplacement,
} from '@pyml/core/types';
import { parseLinearModel, linearSignature, csvToLinearJson } from './linear-format.ts';

export type { LinearAdapter, LinearSession } from './adapter.ts';

export interface PluginOptions {
  /** Example option, baked into nothing: show how options reach hooks. */
  verbose?: boolean;
}

const NAME = '__PLUGIN__';
const VERSION = '0.1.0';
// The modules the build bundles into the image sit beside this one, with its own extension: .ts while the package
// ships its sources, .js if you compile it (tsc) and point `exports` at the output. The notice is the package's.
const HERE = fileURLToPath(import.meta.url);
const ADAPTER_ENTRY = join(dirname(HERE), `adapter${extname(HERE)}`);
const DEFAULT_MODEL_ENTRY = join(dirname(HERE), `default-model${extname(HERE)}`);
const NOTICE = join(dirname(HERE), '..', 'README.md');

const isLinear = (name: string) => name.endsWith('.linear.json');

export default function plugin(options: PluginOptions = {}): PymlPlugin {
  return {
    name: NAME,
    apiVersion: 1,
    version: VERSION,

    /** sequential, first: inspect or adjust the resolved config (paths are absolute, defaults filled). */
    configResolved(config: ResolvedConfig, ctx: HookContext) {
      if (options.verbose) ctx.log(`${NAME}: ${config.weights.length} weights file(s) in ${config.root}`);
    },

    /** first, per weights file: ship a converted file instead (here: coefficients in CSV → .linear.json). */
    async transformWeights(file: WeightsFile, ctx: HookContext): Promise<WeightsReplacement | undefined> {
      if (!file.name.endsWith('.linear.csv')) return undefined;
      const name = file.name.replace(/\.csv$/, '.json');
      const dir = join(ctx.cacheDir, NAME);
      await mkdir(dir, { recursive: true });
      const out = join(dir, name);
      await writeFile(`${out}.tmp`, csvToLinearJson(await readFile(file.path, 'utf8'), file.name));
      await rename(`${out}.tmp`, out);
      return { path: out, name };
    },

    /** first, per weights file: recognise the format, validate it (a bad file fails the build), infer the signature. */
    async describeWeights(file: WeightsFile): Promise<WeightsDescription | undefined> {
      if (!isLinear(file.name)) return undefined; // not ours: the next plugin may claim it
      const model = parseLinearModel(await readFile(file.path, 'utf8'), file.name);
      return { format: 'linear-json', signature: linearSignature(model), details: { inputs: model.inputs, outputs: model.outputs } };
    },

    /** first: supply the model module when the config names none. */
    defaultModel(ctx: HookContext): ModelSource | undefined {
      // config.weights are the files as listed (before transformWeights), so the CSV form counts too.
      if (ctx.config.model || !ctx.config.weights.some((w) => isLinear(w) || w.endsWith('.linear.csv'))) return undefined;
      return { entry: DEFAULT_MODEL_ENTRY, kind: 'tensor' };
    },

    /** sequential: adjust esbuild options for the model code (e.g. leave a native package external). */
    bundleOptions(o: BundleOptions): BundleOptions {
      // A framework with a native package would add it here and ship it in `dependencies`:
      //   return { ...o, external: [...o.external, 'my-native-runtime'] };
      return o;
    },

    /** parallel: dependency layers (files + deps-manifest entries). Here: the plugin's notice file. */
    async dependencies(ctx: HookContext): Promise<DependencyLayer[]> {
      return [{
        name: NAME,
        files: [{ path: `/opt/pyml/share/${NAME}/README.md`, source: NOTICE }],
        entries: [{ name: '__PACKAGE__', version: VERSION, license: 'MIT' }],
        // A key that names the contents without reading them, so rebuilds reuse the cached layer.
        cacheKey: `${NAME}@${VERSION}/${ctx.platform.os}/${ctx.platform.architecture}`,
      }];
    },

    /** parallel: the adapter module the image's entrypoint loads; models get it as ctx.adapter(NAME). */
    runtimeAdapter(): RuntimeAdapter {
      return { name: NAME, entry: ADAPTER_ENTRY };
    },

    /** parallel: after the image is written, or the build failed (summary.error). */
    buildEnd(summary: BuildSummary, ctx: HookContext) {
      if (options.verbose) ctx.log(summary.error ? `${NAME}: build failed: ${summary.error.message}` : `${NAME}: built ${summary.digest}`);
    },
  };
}
