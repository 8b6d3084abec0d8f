/**
 * @pyml/plugin-onnx: ONNX models served with onnxruntime-node.
 *
 *   import onnx from '@pyml/plugin-onnx';
 *   export default defineConfig({ ..., weights: ['./weights/model.onnx'], plugins: [onnx()] });
 */
import { mkdirSync, readFileSync, writeFileSync, existsSync } from 'node:fs';
import { basename, isAbsolute, join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { HookContext, PymlPlugin, WeightsDescription, WeightsFile } from '@pyml/core/types';
import type { OnnxModelInfo } from './onnx-reader.ts';
import { cachedOnnxModelInfo } from './model-info-cache.ts';
import { onnxSignature } from './onnx-signature.ts';
import { onnxRuntimeLayer } from './runtime-layer.ts';
import { verifyLoads } from './verify-load.ts';

export type { OnnxAdapter, OnnxSession, OnnxLoadOptions } from './adapter.ts';
export type { OnnxModelInfo, OnnxValueInfo, OnnxTypeInfo } from './onnx-reader.ts';
export { OnnxFormatError } from './onnx-format-error.ts';
export { readOnnxModel } from './model-info-cache.ts';
export { onnxSignature, formatOnnxType, type OnnxSignature, type NonTensorValue } from './onnx-signature.ts';
export { onnxRuntimeLayer } from './runtime-layer.ts';

export interface OnnxPluginOptions {
  /** onnxruntime intra-op threads inside the image (PYML_ORT_THREADS at run time overrides it). */
  threads?: number;
  /**
   * At build time, trial-load models up to this many MB with onnxruntime-node, so an unsupported operator or opset
   * fails the build rather than the first start (default 256; 0 turns it off). Bigger models are only parsed.
   */
  loadCheckMaxMB?: number;
}

// Entry modules beside this one, with its own extension: .ts in pyml's checkout, .js once compiled and installed.
const EXT = import.meta.url.endsWith('.ts') ? '.ts' : '.js';
const ADAPTER_ENTRY = fileURLToPath(new URL(`./adapter${EXT}`, import.meta.url));
const DEFAULT_MODEL_ENTRY = fileURLToPath(new URL(`./default-model${EXT}`, import.meta.url));
const PLUGIN_VERSION = (JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8')) as { version: string }).version;

const isOnnx = (file: string) => file.toLowerCase().endsWith('.onnx');

/** How errors name a weights file: relative to the project when inside it. */
function displayPathOf(path: string, ctx: HookContext): string {
  const rel = relative(ctx.config.root, path);
  return rel && !rel.startsWith('..') && !isAbsolute(rel) ? rel : path;
}

function describe(info: OnnxModelInfo, displayPath: string, ctx: HookContext): WeightsDescription {
  const { signature, nonTensor, unknownRank } = onnxSignature(info);
  const badInputs = nonTensor.filter((v) => v.role === 'input');
  if (badInputs.length) {
    throw new Error(`${displayPath}: ${badInputs.map((v) => `input "${v.name}" is ${v.type} (${v.reason})`).join('; ')}; pyml tensor models take tensor inputs only`);
  }
  const badOutputs = nonTensor.filter((v) => v.role === 'output');
  if (signature.outputs.length === 0) {
    throw new Error(`${displayPath}: no output is a tensor (${badOutputs.map((v) => `"${v.name}": ${v.type}`).join(', ')}); export the model without ZipMap-style outputs (e.g. skl2onnx options zipmap=False)`);
  }
  // Every external-data file must ship in the same weights directory, or onnxruntime fails at load time in the image.
  const shipped = new Set(ctx.config.weights.map((w) => basename(w)));
  const missing = info.externalData.filter((loc) => !shipped.has(loc));
  if (missing.length) {
    throw new Error(`${displayPath}: initializers are stored in external file${missing.length > 1 ? 's' : ''} ${missing.map((m) => `"${m}"`).join(', ')}, which the config's weights do not include; add ${missing.length > 1 ? 'them' : 'it'} next to the model`);
  }
  const details: Record<string, string | number> = {
    irVersion: info.irVersion,
    opsets: info.opsets.map((o) => `${o.domain || 'ai.onnx'}:${o.version}`).join(','),
    producer: [info.producerName, info.producerVersion].filter(Boolean).join(' ') || 'unknown',
    graph: info.graphName,
    nodes: info.nodeCount,
    operators: Object.keys(info.operators).sort().join(','),
    initializers: info.initializerCount,
    initializerBytes: info.initializerBytes,
  };
  if (info.initializerInputs.length) details.overridableInputs = info.initializerInputs.join(',');
  if (info.externalData.length) details.externalData = info.externalData.join(',');
  if (unknownRank.length) details.unknownRank = unknownRank.join(',');
  if (badOutputs.length) {
    // Left out of the signature: onnxruntime-node cannot return sequence/map values, and OIP has no form for them.
    details.nonTensorOutputs = badOutputs.map((v) => `${v.name}: ${v.type}`).join('; ');
    ctx.log(`onnx: ${displayPath}: outputs left out of the signature (not tensors): ${details.nonTensorOutputs}`);
  }
  return { format: 'onnx', signature, details };
}

/** Writes (once, only when changed) an adapter entry that bakes the plugin's options into the bundled adapter. */
function adapterEntryWithOptions(options: OnnxPluginOptions, cacheDir: string): string {
  // One file per option set: the cache directory may be shared by builds of several projects.
  const dir = join(cacheDir, 'onnx');
  mkdirSync(dir, { recursive: true });
  const file = join(dir, `adapter-threads-${options.threads}.ts`);
  const source = [
    '// Generated by @pyml/plugin-onnx: the adapter with the options given to onnx() in pyml.config.ts.',
    `import { createOnnxAdapter } from ${JSON.stringify(ADAPTER_ENTRY)};`,
    `export default createOnnxAdapter(${JSON.stringify({ threads: options.threads })});`,
    '',
  ].join('\n');
  if (!existsSync(file) || readFileSync(file, 'utf8') !== source) writeFileSync(file, source);
  return file;
}

export default function onnx(options: OnnxPluginOptions = {}): PymlPlugin {
  if (options.threads !== undefined && !(Number.isInteger(options.threads) && options.threads >= 0)) {
    throw new Error(`onnx({ threads }): expected a non-negative integer, got ${String(options.threads)}`);
  }
  if (options.loadCheckMaxMB !== undefined && !(options.loadCheckMaxMB >= 0)) {
    throw new Error(`onnx({ loadCheckMaxMB }): expected a number of MB >= 0, got ${String(options.loadCheckMaxMB)}`);
  }
  return {
    name: 'onnx',
    apiVersion: 1,
    version: PLUGIN_VERSION,

    async describeWeights(file: WeightsFile, ctx: HookContext) {
      if (!isOnnx(file.name)) return undefined;
      const displayPath = displayPathOf(file.path, ctx);
      const info = await cachedOnnxModelInfo(file.path, displayPath, ctx.cacheDir);
      const description = describe(info, displayPath, ctx);
      const maxBytes = (options.loadCheckMaxMB ?? 256) * 2 ** 20;
      if (maxBytes === 0) return description;
      if (file.size > maxBytes || info.externalData.length) {
        ctx.log(`onnx: ${displayPath}: trial load skipped (${info.externalData.length ? 'external data' : `${(file.size / 2 ** 20).toFixed(0)} MB is over loadCheckMaxMB`}); the file was parsed only`);
        return description;
      }
      const check = await verifyLoads(file.path, displayPath, ctx.cacheDir);
      if (check) description.details!.loadedWith = check.runtime;
      else ctx.log(`onnx: ${displayPath}: onnxruntime-node cannot run on this build machine; the file was parsed only`);
      return description;
    },

    defaultModel(ctx) {
      if (ctx.config.model) return undefined;
      const models = ctx.config.weights.filter(isOnnx);
      if (models.length === 0) return undefined;
      if (models.length > 1) {
        throw new Error(`the config has no model and ${models.length} .onnx weights (${models.map((m) => basename(m)).join(', ')}); the default ONNX model serves exactly one, so write a model module and set \`model\``);
      }
      return { entry: DEFAULT_MODEL_ENTRY, kind: 'tensor' };
    },

    bundleOptions(o) {
      // onnxruntime-common too: a bundled copy would carry its own Tensor class, not the one the native binding checks.
      const external = [...o.external];
      for (const name of ['onnxruntime-node', 'onnxruntime-common']) if (!external.includes(name)) external.push(name);
      return { ...o, external };
    },

    dependencies(ctx) {
      return [onnxRuntimeLayer(ctx.platform)];
    },

    runtimeAdapter(ctx) {
      const entry = options.threads === undefined ? ADAPTER_ENTRY : adapterEntryWithOptions(options, ctx.cacheDir);
      return { name: 'onnx', entry, external: ['onnxruntime-node'] };
    },
  };
}
