import { createRequire } from 'node:module';
import { readFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import '@tensorflow/tfjs-backend-cpu';
import { setWasmPaths } from '@tensorflow/tfjs-backend-wasm';
import { type GraphModel, loadGraphModel } from '@tensorflow/tfjs-converter';
import { type LayersModel, loadLayersModel } from '@tensorflow/tfjs-layers';
import type { RequestTensor } from './catalog.ts';

/**
 * The in-process reference for a TF.js graph or layers model: TF.js itself, on the backend the image runs (WASM, one
 * thread, as there; CPU for a graph with string tensors), loading the manifest and shards as the package ships them, and executing the request by node name.
 * Written here from TF.js's own API, not through the plugin, so a plugin bug cannot hide in both sides.
 */

export interface ReferenceTensor { dims: number[]; data: ArrayLike<number | string> }

const models = new Map<string, GraphModel | LayersModel>();

/** The backend a model runs on in the image: WASM, or CPU for a graph with string tensors (as the plugin does). */
async function useBackend(backend: 'wasm' | 'cpu'): Promise<void> {
  if (tf.getBackend() === backend) return;
  if (backend === 'cpu') {
    if (!(await tf.setBackend('cpu'))) throw new Error("TF.js's cpu backend did not start");
    return;
  }
  {
    tf.env().set('WASM_HAS_MULTITHREAD_SUPPORT', false);
    const wasmDir = `${dirname(createRequire(import.meta.url).resolve('@tensorflow/tfjs-backend-wasm'))}/`;
    setWasmPaths(wasmDir);
    const g = globalThis as { __dirname?: string };
    g.__dirname ??= wasmDir;
    if (!(await tf.setBackend('wasm'))) throw new Error(`TF.js's wasm backend did not start (files in ${wasmDir})`);
  }
}

async function load(manifest: string): Promise<GraphModel | LayersModel> {
  const cached = models.get(manifest);
  if (cached) return cached;
  const dir = join(manifest, '..');
  const json = JSON.parse(await readFile(manifest, 'utf8'));
  const shards: Buffer[] = [];
  for (const group of json.weightsManifest) for (const p of group.paths) shards.push(await readFile(join(dir, p)));
  const weightData = new Uint8Array(Buffer.concat(shards)).buffer;
  const handler = {
    load: async () => ({
      modelTopology: json.modelTopology, format: json.format, generatedBy: json.generatedBy, convertedBy: json.convertedBy,
      weightSpecs: json.weightsManifest.flatMap((g: { weights: unknown[] }) => g.weights), weightData,
      ...(json.signature ? { signature: json.signature } : {}), ...(json.userDefinedMetadata ? { userDefinedMetadata: json.userDefinedMetadata } : {}),
      ...(json.modelInitializer ? { modelInitializer: json.modelInitializer } : {}),
    }),
  };
  // A layers model states "format": "layers-model" or has a Keras topology (no GraphDef `node` list).
  const layers = json.format === 'layers-model' || (json.format === undefined && !('node' in json.modelTopology));
  const model = layers ? await loadLayersModel(handler) : await loadGraphModel(handler);
  models.set(manifest, model);
  return model;
}

export async function tfjsReference(manifest: string, request: RequestTensor[], outputs: string[], options: { flags?: Record<string, boolean>; backend?: 'wasm' | 'cpu' } = {}): Promise<Record<string, ReferenceTensor>> {
  await useBackend(options.backend ?? 'wasm');
  const model = await load(manifest);
  for (const [flag, value] of Object.entries(options.flags ?? {})) tf.env().set(flag, value);
  const feeds: tf.NamedTensorMap = {};
  for (const t of request) {
    feeds[t.name] = t.datatype === 'BYTES' ? tf.tensor(t.data, t.shape, 'string') : tf.tensor(t.data, t.shape, t.datatype === 'INT32' ? 'int32' : 'float32');
  }
  let ys: tf.Tensor | tf.Tensor[];
  if ('layers' in model) {
    // A layers model: its inputs in the order of model.inputNames, outputs in the order of model.outputNames.
    const layersModel = model as LayersModel;
    const predicted = layersModel.predict(layersModel.inputNames.map((name) => feeds[name] ?? missing(name)));
    const byName = new Map(layersModel.outputNames.map((name, i) => [name, Array.isArray(predicted) ? predicted[i] : predicted]));
    ys = outputs.map((name) => byName.get(name) ?? missing(name));
  } else {
    // execute() for plain graphs; graphs with control flow or dynamic shapes need executeAsync().
    const graph = model as GraphModel;
    try {
      ys = graph.execute(feeds, outputs);
    } catch (error) {
      if (!/executeAsync/.test((error as Error).message)) throw error;
      ys = await graph.executeAsync(feeds, outputs);
    }
  }
  const list = Array.isArray(ys) ? ys : [ys];
  const out: Record<string, ReferenceTensor> = {};
  for (const [i, name] of outputs.entries()) out[name] = { dims: list[i].shape, data: await list[i].data() as Float32Array | string[] };
  tf.dispose([...Object.values(feeds), ...list]);
  return out;
}

function missing(name: string): never {
  throw new Error(`the TF.js reference has no tensor '${name}' (the request or the catalog's outputs name it)`);
}
