/**
 * pyml-plugin-xgboost-json: serve tree ensembles saved in XGBoost's JSON model format, evaluated in TypeScript.
 * Written only against pyml's public plugin API (`@pyml/core/types`) and the model contract (`@pyml/contract`).
 *
 *   import xgboostJson from 'pyml-plugin-xgboost-json';
 *   export default defineConfig({ name: 'iris-gbt', version: '1.0.0', weights: ['./weights/model.json'], plugins: [xgboostJson()] });
 */
import { readFile } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import type { HookContext, PymlPlugin, WeightsDescription, WeightsFile } from '@pyml/core/types';
import { looksLikeXgboost, readEnsemble } from './model-format.ts';
import { ensembleSignature } from './signature.ts';

export type { XgboostAdapter } from './adapter.ts';
export type { Booster } from './booster.ts';
export { readEnsemble, XgboostFormatError, type Ensemble } from './model-format.ts';

export interface XgboostJsonOptions {
  /** Largest weights file read at build time, in MB (default 512): the JSON format is read whole. */
  maxMB?: number;
}

// Entry modules beside this one, with its own extension: .ts from source, .js once compiled (pyml compiles a
// TypeScript plugin package file by file when a project uses it).
const EXT = import.meta.url.endsWith('.ts') ? '.ts' : '.js';
const ADAPTER_ENTRY = fileURLToPath(new URL(`./adapter${EXT}`, import.meta.url));
const DEFAULT_MODEL_ENTRY = fileURLToPath(new URL(`./default-model${EXT}`, import.meta.url));

export default function xgboostJson(options: XgboostJsonOptions = {}): PymlPlugin {
  const maxBytes = (options.maxMB ?? 512) * 2 ** 20;
  return {
    name: 'xgboost-json',
    apiVersion: 1,
    version: '0.1.0',

    async describeWeights(file: WeightsFile, ctx: HookContext): Promise<WeightsDescription | undefined> {
      if (!file.name.endsWith('.json')) return undefined;
      if (file.size > maxBytes) throw new Error(`${file.name}: ${(file.size / 2 ** 20).toFixed(0)} MB is over maxMB (${options.maxMB ?? 512})`);
      let json: unknown;
      try {
        json = JSON.parse(await readFile(file.path, 'utf8'));
      } catch {
        return undefined; // not JSON: another plugin's file
      }
      if (!looksLikeXgboost(json)) return undefined;
      // Parsing validates every tree, so a corrupt model fails the build, not the first request.
      const model = readEnsemble(json, file.name);
      ctx.log(`xgboost-json: ${file.name}: ${model.trees.length} trees, ${model.objective}`);
      return {
        format: 'xgboost-json',
        signature: ensembleSignature(model),
        details: { xgboost: model.version, objective: model.objective, trees: model.trees.length, features: model.numFeature, ...(model.featureNames.length ? { featureNames: model.featureNames.join(',') } : {}) },
      };
    },

    defaultModel(ctx) {
      if (ctx.config.model || !ctx.config.weights.some((w) => w.endsWith('.json'))) return undefined;
      return { entry: DEFAULT_MODEL_ENTRY, kind: 'tensor' };
    },

    runtimeAdapter() {
      return { name: 'xgboost-json', entry: ADAPTER_ENTRY };
    },
  };
}
