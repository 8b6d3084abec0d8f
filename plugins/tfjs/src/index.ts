/**
 * @pyml/plugin-tfjs: TF.js models (layers or graph format) served in Node on the WASM backend.
 *
 *   import tfjs from '@pyml/plugin-tfjs';
 *   export default defineConfig({ name, version, weights: ['./weights/model'], plugins: [tfjs()] });
 *
 * A weights entry that is a directory holding model.json (or one JSON manifest under another name) is a TF.js
 * model: its shards are checked at build time (a missing shard or broken manifest is a build error naming the
 * file) and its signature is read by loading it with TF.js on the CPU backend (graph models: graph-signature.ts).
 */
import { readFileSync } from 'node:fs';
import { isAbsolute, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { HookContext, PymlPlugin, WeightsFile } from '@pyml/core/types';
import { directoryBytes, findManifest, readModelDirectory } from './file-io.ts';
import { tfjsRuntimeLayer } from './runtime-layer.ts';

export { fileLoadHandler, fileSaveHandler, findManifest, readModelDirectory, type ModelDirectory, type TfjsFormat } from './file-io.ts';
export type { TfjsAdapter, TfjsSession } from './adapter.ts';

const PLUGIN_VERSION = (JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8')) as { version: string }).version;
// Entry modules beside this one, with its own extension: .ts in pyml's checkout, .js once compiled and installed.
const EXT = import.meta.url.endsWith('.ts') ? '.ts' : '.js';
const ADAPTER_ENTRY = fileURLToPath(new URL(`./adapter${EXT}`, import.meta.url));
const DEFAULT_MODEL_ENTRY = fileURLToPath(new URL(`./default-model${EXT}`, import.meta.url));

function displayPathOf(path: string, ctx: HookContext): string {
  const rel = relative(ctx.config.root, path);
  return rel && !rel.startsWith('..') && !isAbsolute(rel) ? rel : path;
}

export default function tfjs(): PymlPlugin {
  const models: string[] = [];
  return {
    name: 'tfjs',
    apiVersion: 1,
    version: PLUGIN_VERSION,

    async describeWeights(file: WeightsFile, ctx: HookContext) {
      const display = displayPathOf(file.path, ctx);
      if (!file.directory) {
        if (file.name === 'model.json') throw new Error(`${display}: list the TF.js model's directory in weights (its model.json and shards ship together), not model.json alone`);
        return undefined;
      }
      // model.json, or the directory's one JSON file holding the model under another name.
      const manifest = findManifest(file.path, display);
      if (!manifest) return undefined;
      // Validates the manifest and every shard (errors name the file) before TF.js sees them.
      const dir = readModelDirectory(file.path, display, manifest);
      // Loading once with TF.js (CPU backend, in the build process) gives the exact input/output specs.
      const { loadTfjsModel } = await import('./load-model.ts');
      const tf = await import('@tensorflow/tfjs-core');
      await import('@tensorflow/tfjs-backend-cpu');
      tf.env().set('PROD', true);
      if (tf.getBackend() !== 'cpu') await tf.setBackend('cpu');
      const session = await loadTfjsModel(file.path, display);
      session.release();
      models.push(file.name);
      return {
        format: `tfjs-${dir.format}`,
        signature: session.signature,
        details: { files: dir.files.join(','), bytes: directoryBytes(file.path, dir.files) },
      };
    },

    defaultModel(ctx) {
      if (ctx.config.model || models.length === 0) return undefined;
      if (models.length > 1) throw new Error(`the config has no model and ${models.length} TF.js models (${models.join(', ')}); the default model serves exactly one, so write a model module and set \`model\``);
      return { entry: DEFAULT_MODEL_ENTRY, kind: 'tensor' };
    },

    dependencies(ctx) {
      return [tfjsRuntimeLayer(ctx.platform)];
    },

    runtimeAdapter() {
      return { name: 'tfjs', entry: ADAPTER_ENTRY };
    },
  };
}
