/**
 * @pyml/plugin-pytorch: PyTorch models written in Python, served by a Python sidecar inside the same image.
 *
 *   import pytorch from '@pyml/plugin-pytorch';
 *   export default defineConfig({ ..., kind: 'tensor', weights: ['./weights/mlp.pt'], signature: {...},
 *     plugins: [pytorch({ model: './src/model.py' })] });
 */
import { readFileSync } from 'node:fs';
import { open, readdir, readFile, stat } from 'node:fs/promises';
import { basename, dirname, isAbsolute, join, relative, resolve, sep } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { BundleOptions, HookContext, PymlPlugin, WeightsFile } from '@pyml/core/types';
import { IMAGE_PYTHON_PACKAGE_DIR, type PythonModelSource } from './adapter.ts';
import { PYTHON_VERSION, pymlPythonLayer, pythonEnvLayer } from './python-env.ts';
import { requirementsLayer } from './requirements-layer.ts';

export type { PytorchAdapter, PytorchSession, PythonModelSource, PytorchAdapterOptions } from './adapter.ts';
export { createPytorchAdapter, SidecarError, IMAGE_SITE_PACKAGES } from './adapter.ts';
export { pythonEnvLayer, pythonPackageClosure, pymlPythonLayer } from './python-env.ts';
export { requirementsLayer } from './requirements-layer.ts';

export interface PytorchPluginOptions {
  /** The Python module holding the model class, relative to the config ('./src/model.py'). */
  model?: string;
  /** The model class; default: the one pyml.TensorModel subclass the module defines. */
  className?: string;
  /** Debian packages the model's Python code imports (default: python3-torch, python3-numpy); their Python dependencies follow. */
  packages?: string[];
  /** A requirements.txt installed offline from `wheels` (pip --no-index --find-links) into its own deps layer. */
  requirements?: string;
  /** The wheel directory for `requirements` (with every dependency the requirements need beyond Debian's packages). */
  wheels?: string;
}

// Entry modules beside this one, with its own extension: .ts in pyml's checkout, .js once compiled and installed.
const EXT = import.meta.url.endsWith('.ts') ? '.ts' : '.js';
const ADAPTER_ENTRY = fileURLToPath(new URL(`./adapter${EXT}`, import.meta.url));
const DEFAULT_MODEL_ENTRY = fileURLToPath(new URL(`./default-model${EXT}`, import.meta.url));
export const PYTHON_PACKAGE_DIR = fileURLToPath(new URL('../python/pyml', import.meta.url));
/** For tests and benches on the host: the directory to put on sys.path for `import pyml`. */
export const PYTHON_PATH_DIR = dirname(PYTHON_PACKAGE_DIR);
const PLUGIN_VERSION = (JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8')) as { version: string }).version;
const MODEL_DEFINE = '__PYML_PYTORCH_MODEL__';
const TORCH_WEIGHTS = /\.(pt|pth|torchscript|ptl)$/i;
/** Python source files bigger than this are surely not model code (data checked in by mistake). */
const MAX_SOURCE_BYTES = 4 << 20;

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

function modelPathOf(options: PytorchPluginOptions, ctx: HookContext): string {
  if (!options.model) throw new Error('pytorch({ model }): name the Python module of the model, e.g. pytorch({ model: "./src/model.py" })');
  const file = isAbsolute(options.model) ? options.model : resolve(ctx.config.root, options.model);
  if (!file.endsWith('.py')) throw new Error(`pytorch({ model }): ${options.model} is not a Python file (.py)`);
  return file;
}

/** TorchScript and torch.save files are zip archives; anything else would fail only at load time in the image. */
async function describeTorchFile(file: WeightsFile, ctx: HookContext) {
  const h = await open(file.path, 'r');
  try {
    const magic = Buffer.alloc(4);
    await h.read(magic, 0, 4, 0);
    if (magic.readUInt32LE(0) !== 0x04034b50) {
      const rel = relative(ctx.config.root, file.path);
      throw new Error(`${rel}: not a TorchScript/torch.save zip archive (starts with ${magic.toString('hex')}); save it with torch.jit.save(torch.jit.trace(model, example), path)`);
    }
  } finally {
    await h.close();
  }
  return { format: 'torchscript', details: { bytes: file.size } };
}

export default function pytorch(options: PytorchPluginOptions = {}): PymlPlugin {
  const packages = options.packages ?? ['python3-torch', 'python3-numpy'];
  return {
    name: 'pytorch',
    apiVersion: 1,
    version: PLUGIN_VERSION,

    async describeWeights(file, ctx) {
      if (!TORCH_WEIGHTS.test(file.name)) return undefined;
      return describeTorchFile(file, ctx);
    },

    async defaultModel(ctx) {
      if (ctx.config.model) return undefined;
      const file = modelPathOf(options, ctx);
      await stat(file).catch(() => { throw new Error(`pytorch({ model }): ${relative(ctx.config.root, file)} does not exist`); });
      if (ctx.config.kind !== 'tensor') throw new Error(`pytorch: only tensor models are served for now; the config says kind: '${ctx.config.kind}'`);
      return { entry: DEFAULT_MODEL_ENTRY, kind: 'tensor' };
    },

    async bundleOptions(o: BundleOptions, ctx) {
      if (ctx.config.model && !options.model) return o;
      // The Python sources ride in the model-code bundle: a change to them rebuilds that small layer only.
      const source = await collectPythonSources(modelPathOf(options, ctx));
      if (options.className) source.className = options.className;
      return { ...o, define: { ...o.define, [MODEL_DEFINE]: JSON.stringify(JSON.stringify(source)) } };
    },

    async dependencies(ctx) {
      const [env, pyml] = await Promise.all([
        pythonEnvLayer({ packages, platform: ctx.platform, cacheDir: ctx.cacheDir, log: ctx.log }),
        pymlPythonLayer(PYTHON_PACKAGE_DIR, IMAGE_PYTHON_PACKAGE_DIR, PLUGIN_VERSION),
      ]);
      if (!options.requirements) return [env, pyml];
      if (!options.wheels) throw new Error('pytorch({ requirements }): also give wheels, the directory pip installs from offline (--no-index --find-links)');
      const req = await requirementsLayer({
        requirements: resolve(ctx.config.root, options.requirements), wheels: resolve(ctx.config.root, options.wheels),
        python: `/usr/bin/python${PYTHON_VERSION}`, cacheDir: ctx.cacheDir, log: ctx.log,
      });
      return [env, req, pyml];
    },

    runtimeAdapter() {
      return { name: 'pytorch', entry: ADAPTER_ENTRY };
    },
  };
}
