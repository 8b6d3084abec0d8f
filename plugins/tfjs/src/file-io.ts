/**
 * TF.js model directories on disk, with no network and no tfjs-node: a load handler that reads model.json and its
 * weight shards (checking every shard exists and the bytes add up), and a save handler that writes them.
 * Used at build time (to validate and describe the model) and in the image (to load it).
 */
import { readdirSync, readFileSync, statSync, writeFileSync, renameSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import type { io } from '@tensorflow/tfjs';

export type TfjsFormat = 'layers' | 'graph';

export interface ModelDirectory {
  format: TfjsFormat;
  /** The manifest's file name: model.json, or the one JSON file of the directory that holds the model. */
  manifest: string;
  artifacts: io.ModelArtifacts;
  /** Every file the model uses, relative to the directory: the manifest first, then the shards. */
  files: string[];
}

const DTYPE_BYTES: Record<string, number> = { float32: 4, int32: 4, bool: 1, uint8: 1, uint16: 2, float16: 2, complex64: 8 };

/**
 * Bytes a weights entry takes in its shard at `offset` (quantized weights store their quantized dtype). A string
 * tensor (vocabularies, class names of graph models) stores each element as a 4-byte little-endian length and
 * its UTF-8 bytes, so its size is read from the shard itself.
 */
function entryBytes(spec: io.WeightsManifestEntry, where: string, shard: Buffer, offset: number): number {
  const count = spec.shape.reduce((a, b) => a * b, 1);
  if (spec.dtype === 'string' && !spec.quantization) {
    let at = offset;
    for (let i = 0; i < count; i++) {
      if (at + 4 > shard.length) throw new Error(`${where}: string weight "${spec.name}" runs past the end of its shards (element ${i} of ${count})`);
      at += 4 + shard.readUInt32LE(at);
    }
    if (at > shard.length) throw new Error(`${where}: string weight "${spec.name}" runs past the end of its shards`);
    return at - offset;
  }
  const dtype = spec.quantization?.dtype ?? spec.dtype;
  const size = DTYPE_BYTES[dtype];
  if (size === undefined) throw new Error(`${where}: weight "${spec.name}" has unknown dtype ${String(dtype)}`);
  return count * size;
}

/** Layers (Keras topology) or graph (GraphDef) model, from `format` or the topology's shape. */
function formatOf(json: Record<string, unknown>, where: string): TfjsFormat {
  if (json.format === 'layers-model') return 'layers';
  if (json.format === 'graph-model') return 'graph';
  const topology = json.modelTopology as Record<string, unknown> | undefined;
  if (topology && typeof topology === 'object') {
    if ('model_config' in topology || 'class_name' in topology) return 'layers';
    if ('node' in topology) return 'graph';
  }
  throw new Error(`${where}: not a TF.js model: expected "format": "layers-model" or "graph-model", or a modelTopology with model_config (layers) or node (graph)`);
}

export const MANIFEST = 'model.json';
/** Largest JSON file read when looking for a manifest under another name (graph topologies run to a few MB). */
const MAX_MANIFEST_BYTES = 64 * 1024 * 1024;

/**
 * The manifest of a model directory: model.json, else the one JSON file that looks like a TF.js manifest (has
 * modelTopology, weightsManifest or a TF.js `format`: converters and hand-made exports name it freely, e.g.
 * `tensorflowjs_model.json`, `model_web.json`). Undefined when the directory holds no such file (not a TF.js
 * model); an error naming them when several do.
 */
export function findManifest(dir: string, display = dir): string | undefined {
  let names: string[];
  try {
    names = readdirSync(dir);
  } catch {
    return undefined;
  }
  if (names.includes(MANIFEST)) return MANIFEST;
  const candidates = names.filter((name) => name.toLowerCase().endsWith('.json')).sort().filter((name) => {
    try {
      const path = join(dir, name);
      if (!statSync(path).isFile() || statSync(path).size > MAX_MANIFEST_BYTES) return false;
      const json = JSON.parse(readFileSync(path, 'utf8')) as unknown;
      if (!json || typeof json !== 'object' || Array.isArray(json)) return false;
      const keys = json as Record<string, unknown>;
      return 'modelTopology' in keys || 'weightsManifest' in keys || /^(layers|graph)-model$/.test(String(keys.format));
    } catch {
      return false;
    }
  });
  if (candidates.length > 1) {
    throw new Error(`${display}: ${candidates.join(', ')} all look like TF.js model manifests; keep one per directory (or name it model.json)`);
  }
  return candidates[0];
}

/** Reads a TF.js model directory; every problem is an error naming the file. */
export function readModelDirectory(dir: string, display = dir, manifest = findManifest(dir, display) ?? MANIFEST): ModelDirectory {
  const modelJson = join(dir, manifest);
  const where = `${display}/${manifest}`;
  let text: string;
  try {
    text = readFileSync(modelJson, 'utf8');
  } catch (error) {
    throw new Error(`${where}: cannot read (${(error as NodeJS.ErrnoException).code ?? (error as Error).message}); a TF.js model directory holds a manifest (model.json, with modelTopology and weightsManifest) and its weight shards`);
  }
  let json: Record<string, unknown>;
  try {
    json = JSON.parse(text) as Record<string, unknown>;
  } catch (error) {
    throw new Error(`${where}: not valid JSON (${(error as Error).message})`);
  }
  if (!json || typeof json !== 'object' || Array.isArray(json)) throw new Error(`${where}: expected a JSON object`);
  const format = formatOf(json, where);
  if (!json.modelTopology || typeof json.modelTopology !== 'object') throw new Error(`${where}: modelTopology is missing (the model's layers or graph); a TF.js manifest holds modelTopology and weightsManifest`);
  const groups = json.weightsManifest as io.WeightsManifestConfig | undefined;
  if (!Array.isArray(groups)) throw new Error(`${where}: weightsManifest is ${groups === undefined ? 'missing' : 'not an array'} (the list of weight shards and the weights they hold); a TF.js manifest holds modelTopology and weightsManifest`);

  const files = [manifest];
  const weightSpecs: io.WeightsManifestEntry[] = [];
  const buffers: Buffer[] = [];
  groups.forEach((group, g) => {
    if (!Array.isArray(group?.paths) || !Array.isArray(group?.weights)) throw new Error(`${where}: weightsManifest[${g}] needs "paths" and "weights" arrays`);
    let groupBytes = 0;
    for (const p of group.paths) {
      if (typeof p !== 'string' || p.startsWith('/') || p.split('/').includes('..')) throw new Error(`${where}: weightsManifest[${g}]: shard path ${JSON.stringify(p)} must be relative, inside the model directory`);
      const shard = join(dir, p);
      let bytes: Buffer;
      try {
        bytes = readFileSync(shard);
      } catch (error) {
        throw new Error(`${display}/${p}: weight shard listed in ${manifest} ${(error as NodeJS.ErrnoException).code === 'ENOENT' ? 'is missing' : `cannot be read (${(error as Error).message})`}`);
      }
      files.push(p);
      buffers.push(bytes);
      groupBytes += bytes.length;
    }
    const groupData = Buffer.concat(buffers.slice(buffers.length - group.paths.length));
    const expected = group.weights.reduce((n, spec) => n + entryBytes(spec, where, groupData, n), 0);
    if (expected !== groupBytes) {
      throw new Error(`${where}: weightsManifest[${g}] describes ${expected} bytes of weights but its shards (${group.paths.join(', ')}) hold ${groupBytes}`);
    }
    weightSpecs.push(...group.weights);
  });
  const all = Buffer.concat(buffers);
  const artifacts: io.ModelArtifacts = {
    modelTopology: json.modelTopology as io.ModelArtifacts['modelTopology'],
    format: json.format as string | undefined,
    generatedBy: json.generatedBy as string | undefined,
    convertedBy: json.convertedBy as string | null | undefined,
    weightSpecs,
    weightData: all.buffer.slice(all.byteOffset, all.byteOffset + all.byteLength),
    ...(json.signature ? { signature: json.signature as object } : {}),
    ...(json.userDefinedMetadata ? { userDefinedMetadata: json.userDefinedMetadata as Record<string, {}> } : {}),
    ...(json.modelInitializer ? { modelInitializer: json.modelInitializer as object } : {}),
    ...(json.trainingConfig ? { trainingConfig: json.trainingConfig as io.TrainingConfig } : {}),
  };
  return { format, manifest, artifacts, files };
}

/** An IOHandler that loads a model directory from disk. */
export function fileLoadHandler(dir: string, display = dir): io.IOHandler {
  return { load: async () => readModelDirectory(dir, display).artifacts };
}

/** An IOHandler that saves a model as `dir/model.json` + `dir/weights.bin` (written under temp names, then renamed). */
export function fileSaveHandler(dir: string): io.IOHandler {
  return {
    save: async (artifacts: io.ModelArtifacts) => {
      mkdirSync(dir, { recursive: true });
      const parts = artifacts.weightData === undefined ? [] : Array.isArray(artifacts.weightData) ? artifacts.weightData : [artifacts.weightData];
      const weights = Buffer.concat(parts.map((b) => Buffer.from(b)));
      const json = {
        modelTopology: artifacts.modelTopology,
        format: artifacts.format ?? (artifacts.modelTopology && 'node' in (artifacts.modelTopology as object) ? 'graph-model' : 'layers-model'),
        generatedBy: artifacts.generatedBy,
        convertedBy: artifacts.convertedBy ?? null,
        weightsManifest: [{ paths: ['weights.bin'], weights: artifacts.weightSpecs ?? [] }],
        ...(artifacts.signature ? { signature: artifacts.signature } : {}),
        ...(artifacts.userDefinedMetadata ? { userDefinedMetadata: artifacts.userDefinedMetadata } : {}),
        ...(artifacts.trainingConfig ? { trainingConfig: artifacts.trainingConfig } : {}),
      };
      writeFileSync(join(dir, 'weights.bin.tmp'), weights);
      writeFileSync(join(dir, 'model.json.tmp'), `${JSON.stringify(json)}\n`);
      renameSync(join(dir, 'weights.bin.tmp'), join(dir, 'weights.bin'));
      renameSync(join(dir, 'model.json.tmp'), join(dir, 'model.json'));
      return { modelArtifactsInfo: { dateSaved: new Date(0), modelTopologyType: 'JSON', weightDataBytes: weights.length, modelTopologyBytes: JSON.stringify(json.modelTopology).length } };
    },
  };
}

/** Total size of the model's files (for describe details). */
export function directoryBytes(dir: string, files: string[]): number {
  return files.reduce((n, f) => n + statSync(join(dir, f)).size, 0);
}
