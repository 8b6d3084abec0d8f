/**
 * @pyml/plugin-python: models written in Python (any library: numpy, pandas, scikit-learn, PyTorch, ...), served by
 * Python sidecar processes inside the same image. `@pyml/plugin-pytorch` is this plugin with PyTorch's packages.
 *
 *   import python from '@pyml/plugin-python';
 *   export default defineConfig({ ..., kind: 'dataframe', weights: ['./weights/model.pkl'], signature: {...},
 *     plugins: [python({ model: './src/model.py', packages: ['python3-pandas', 'python3-sklearn'], workers: 2 })] });
 */
import { readFileSync } from 'node:fs';
import { readdir, readFile, stat } from 'node:fs/promises';
import { basename, dirname, isAbsolute, join, relative, resolve, sep } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { BundleOptions, HookContext, PymlPlugin } from '@pyml/core/types';
import { IMAGE_PYTHON_PACKAGE_DIR, type PythonModelSource } from './adapter.ts';
import { environmentLayer } from './environment-layer.ts';
import { PYTHON_VERSION, pymlPythonLayer, pythonEnvLayer } from './python-env.ts';
import { requirementsLayer } from './requirements-layer.ts';

export type { PythonAdapter, PythonSession, PythonModelSource, PythonAdapterOptions } from './adapter.ts';
export { createPythonAdapter, SidecarError, IMAGE_SITE_PACKAGES } from './adapter.ts';
export { pythonEnvLayer, pythonPackageClosure, pymlPythonLayer } from './python-env.ts';
export { requirementsLayer } from './requirements-layer.ts';
export { environmentLayer } from './environment-layer.ts';

export interface PythonPluginOptions {
  /** The Python module holding the model class, relative to the config ('./src/model.py'). */
  model?: string;
  /** The model class; default: the one pyml.TensorModel or pyml.DataFrameModel subclass the module defines. */
  className?: string;
  /** Debian packages the model's Python code imports (default: python3-numpy, plus python3-pandas for a dataframe model); their Python dependencies follow. */
  packages?: string[];
  /** A requirements.txt installed offline from `wheels` (pip --no-index --find-links) into its own deps layer. */
  requirements?: string;
  /** The wheel directory for `requirements` (with every dependency the requirements need beyond Debian's packages). */
  wheels?: string;
  /**
   * A Python environment made beforehand (a virtual environment's directory, or its site-packages), for Python
   * 3.11 like the image's interpreter: its site-packages ship as they are, in their own deps layer.
   */
  environment?: string;
  /** Python processes serving requests concurrently (default 1): each runs the model's init once. */
  workers?: number;
}

/** What a preset (e.g. @pyml/plugin-pytorch) changes: its name, default packages and weights it recognises. */
export interface PythonPreset {
  name: string;
  packages: string[];
  describeWeights?: PymlPlugin['describeWeights'];
}

// Entry modules beside this one, with its own extension: .ts in pyml's checkout, .js once compiled and installed.
const EXT = import.meta.url.endsWith('.ts') ? '.ts' : '.js';
const ADAPTER_ENTRY = fileURLToPath(new URL(`./adapter${EXT}`, import.meta.url));
const TENSOR_MODEL_ENTRY = fileURLToPath(new URL(`./default-model${EXT}`, import.meta.url));
const FRAME_MODEL_ENTRY = fileURLToPath(new URL(`./default-frame-model${EXT}`, import.meta.url));
export const PYTHON_PACKAGE_DIR = fileURLToPath(new URL('../python/pyml', import.meta.url));
/** For tests and benches on the host: the directory to put on sys.path for `import pyml`. */
export const PYTHON_PATH_DIR = dirname(PYTHON_PACKAGE_DIR);
const PLUGIN_VERSION = (JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8')) as { version: string }).version;
/** The esbuild `define` that carries the Python sources and sidecar settings into the model-code bundle. */
export const MODEL_DEFINE = '__PYML_PYTHON_MODEL__';
/** Python source files bigger than this are surely not model code (data checked in by mistake). */
const MAX_SOURCE_BYTES = 4 << 20;
const MAX_WORKERS = 64;

/**
 * The model's Python sources: every .py file under the model module's directory (its siblings and
 * subpackages), keyed by path relative to that directory, skipping caches and hidden directories.
 */
export async function collectPythonSources(modelFile: string): Promise<PythonModelSource> {
  const root = dirname(modelFile);
  const files: Record<string, string> = {};
  async function walk(dir: string): Promise<void> {
    for (const entry of (await readdir(dir, { withFileTypes: true })).sort((a, b) => (a.name < b.name ? -1 : 1))) {
      if (entry.name.startsWith('.') || entry.name === '__pycache__' || entry.name === 'node_modules') continue;
      const full = join(dir, entry.name);
      if (entry.isDirectory()) await walk(full);
      else if (entry.isFile() && entry.name.endsWith('.py')) {
        const s = await stat(full);
        if (s.size > MAX_SOURCE_BYTES) throw new Error(`${full}: ${s.size} bytes is too big for a Python source file of the model`);
        files[relative(root, full).split(sep).join('/')] = await readFile(full, 'utf8');
      }
    }
  }
  await walk(root);
  return { files, module: basename(modelFile, '.py') };
}

function modelPathOf(name: string, options: PythonPluginOptions, ctx: HookContext): string {
  if (!options.model) throw new Error(`${name}({ model }): name the Python module of the model, e.g. ${name}({ model: "./src/model.py" })`);
  const file = isAbsolute(options.model) ? options.model : resolve(ctx.config.root, options.model);
  if (!file.endsWith('.py')) throw new Error(`${name}({ model }): ${options.model} is not a Python file (.py)`);
  return file;
}

function workersOf(name: string, options: PythonPluginOptions): number {
  const n = options.workers ?? 1;
  if (!Number.isInteger(n) || n < 1 || n > MAX_WORKERS) throw new Error(`${name}({ workers }): expected a whole number from 1 to ${MAX_WORKERS}, got ${String(options.workers)}`);
  return n;
}

/** The plugin for models written in Python; `preset` makes a named variant of it (see @pyml/plugin-pytorch). */
export function pythonPlugin(options: PythonPluginOptions = {}, preset?: PythonPreset): PymlPlugin {
  const name = preset?.name ?? 'python';
  const workers = workersOf(name, options);
  if (options.requirements && options.environment) {
    throw new Error(`${name}({ requirements, environment }): give one of them; both install into /opt/pyml/site-packages`);
  }
  return {
    name,
    apiVersion: 1,
    version: PLUGIN_VERSION,

    ...(preset?.describeWeights ? { describeWeights: preset.describeWeights } : {}),

    async defaultModel(ctx) {
      if (ctx.config.model) return undefined;
      const file = modelPathOf(name, options, ctx);
      await stat(file).catch(() => { throw new Error(`${name}({ model }): ${relative(ctx.config.root, file)} does not exist`); });
      return ctx.config.kind === 'dataframe' ? { entry: FRAME_MODEL_ENTRY, kind: 'dataframe' } : { entry: TENSOR_MODEL_ENTRY, kind: 'tensor' };
    },

    async bundleOptions(o: BundleOptions, ctx) {
      if (ctx.config.model && !options.model) return o;
      // The Python sources ride in the model-code bundle: a change to them rebuilds that small layer only.
      const source = await collectPythonSources(modelPathOf(name, options, ctx));
      if (options.className) source.className = options.className;
      source.workers = workers;
      return { ...o, define: { ...o.define, [MODEL_DEFINE]: JSON.stringify(JSON.stringify(source)) } };
    },

    async dependencies(ctx) {
      const packages = options.packages ?? preset?.packages ?? (ctx.config.kind === 'dataframe' ? ['python3-numpy', 'python3-pandas'] : ['python3-numpy']);
      const [env, pyml] = await Promise.all([
        pythonEnvLayer({ packages, platform: ctx.platform, cacheDir: ctx.cacheDir, log: ctx.log }),
        pymlPythonLayer(PYTHON_PACKAGE_DIR, IMAGE_PYTHON_PACKAGE_DIR, PLUGIN_VERSION),
      ]);
      if (options.environment) {
        return [env, await environmentLayer({ environment: resolve(ctx.config.root, options.environment), cacheDir: ctx.cacheDir, log: ctx.log }), pyml];
      }
      if (!options.requirements) return [env, pyml];
      if (!options.wheels) throw new Error(`${name}({ requirements }): also give wheels, the directory pip installs from offline (--no-index --find-links)`);
      const req = await requirementsLayer({
        requirements: resolve(ctx.config.root, options.requirements), wheels: resolve(ctx.config.root, options.wheels),
        python: `/usr/bin/python${PYTHON_VERSION}`, cacheDir: ctx.cacheDir, log: ctx.log,
      });
      return [env, req, pyml];
    },

    runtimeAdapter() {
      return { name: 'python', entry: ADAPTER_ENTRY };
    },
  };
}

export default function python(options: PythonPluginOptions = {}): PymlPlugin {
  return pythonPlugin(options);
}
