/**
 * Trains a small MLP (4 → 8 → 3) on data/iris.csv and writes weights/model.onnx.
 *
 *   npx tsx examples/onnx-iris/make-model.ts [OUT.onnx]
 *
 * Deterministic on purpose: fixed seed, fixed epochs, full-batch gradient descent, float32 parameters and a
 * fixed protobuf field order, so running it twice gives identical bytes (a test checks the committed file).
 * Graph: input FP32 [N,4] → Gemm → Relu → Gemm → Softmax → `probabilities` FP32 [N,3]; ArgMax → `label` INT64 [N].
 */
import { readFileSync, writeFileSync, mkdirSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { onnxTypes, OnnxDataType, OnnxAttributeType } from '@pyml/plugin-onnx/onnx-schema';

export const SPECIES = ['setosa', 'versicolor', 'virginica'] as const;
const HIDDEN = 8;
const EPOCHS = 1500;
const LEARNING_RATE = 0.2;
const SEED = 20240229;

const here = dirname(fileURLToPath(import.meta.url));
export const IRIS_CSV = join(here, 'data', 'iris.csv');
export const MODEL_PATH = join(here, 'weights', 'model.onnx');

export interface IrisData { x: Float32Array; y: Int32Array; rows: number }

export function parseIris(csv: string): IrisData {
  const lines = csv.trim().split('\n').slice(1);
  const x = new Float32Array(lines.length * 4);
  const y = new Int32Array(lines.length);
  lines.forEach((line, i) => {
    const cells = line.split(',');
    for (let j = 0; j < 4; j++) x[i * 4 + j] = Number(cells[j]);
    y[i] = SPECIES.indexOf(cells[4].trim() as (typeof SPECIES)[number]);
    if (y[i] < 0) throw new Error(`${IRIS_CSV}: line ${i + 2}: unknown species "${cells[4]}"`);
  });
  return { x, y, rows: lines.length };
}

/** mulberry32: a tiny seeded PRNG, so initial weights are the same on every machine. */
function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

export interface IrisMlp { w1: Float32Array; b1: Float32Array; w2: Float32Array; b2: Float32Array }

/** Full-batch gradient descent on softmax cross-entropy over standardised features; returns raw-feature weights. */
export function train({ x, y, rows }: IrisData): IrisMlp {
  // Standardise for training, then fold mean/std into the first layer so the model takes raw measurements.
  const mean = new Float64Array(4), std = new Float64Array(4);
  for (let i = 0; i < rows; i++) for (let j = 0; j < 4; j++) mean[j] += x[i * 4 + j] / rows;
  for (let i = 0; i < rows; i++) for (let j = 0; j < 4; j++) std[j] += (x[i * 4 + j] - mean[j]) ** 2 / rows;
  for (let j = 0; j < 4; j++) std[j] = Math.sqrt(std[j]);
  const z = new Float32Array(rows * 4);
  for (let i = 0; i < rows; i++) for (let j = 0; j < 4; j++) z[i * 4 + j] = (x[i * 4 + j] - mean[j]) / std[j];

  const rand = prng(SEED);
  const init = (n: number, fanIn: number) => Float32Array.from({ length: n }, () => (rand() * 2 - 1) * Math.sqrt(6 / fanIn));
  const w1 = init(4 * HIDDEN, 4), b1 = new Float32Array(HIDDEN);
  const w2 = init(HIDDEN * 3, HIDDEN), b2 = new Float32Array(3);

  const h = new Float64Array(HIDDEN), p = new Float64Array(3), dh = new Float64Array(HIDDEN);
  for (let epoch = 0; epoch < EPOCHS; epoch++) {
    const gw1 = new Float64Array(w1.length), gb1 = new Float64Array(HIDDEN);
    const gw2 = new Float64Array(w2.length), gb2 = new Float64Array(3);
    for (let i = 0; i < rows; i++) {
      for (let k = 0; k < HIDDEN; k++) {
        let s = b1[k];
        for (let j = 0; j < 4; j++) s += z[i * 4 + j] * w1[j * HIDDEN + k];
        h[k] = Math.max(0, s);
      }
      let max = -Infinity;
      for (let c = 0; c < 3; c++) {
        let s = b2[c];
        for (let k = 0; k < HIDDEN; k++) s += h[k] * w2[k * 3 + c];
        p[c] = s;
        max = Math.max(max, s);
      }
      let sum = 0;
      for (let c = 0; c < 3; c++) { p[c] = Math.exp(p[c] - max); sum += p[c]; }
      dh.fill(0);
      for (let c = 0; c < 3; c++) {
        const d = (p[c] / sum - (y[i] === c ? 1 : 0)) / rows; // dLoss/dlogit, averaged over the batch
        gb2[c] += d;
        for (let k = 0; k < HIDDEN; k++) { gw2[k * 3 + c] += h[k] * d; dh[k] += w2[k * 3 + c] * d; }
      }
      for (let k = 0; k < HIDDEN; k++) {
        if (h[k] <= 0) continue;
        gb1[k] += dh[k];
        for (let j = 0; j < 4; j++) gw1[j * HIDDEN + k] += z[i * 4 + j] * dh[k];
      }
    }
    for (let n = 0; n < w1.length; n++) w1[n] -= LEARNING_RATE * gw1[n];
    for (let n = 0; n < HIDDEN; n++) b1[n] -= LEARNING_RATE * gb1[n];
    for (let n = 0; n < w2.length; n++) w2[n] -= LEARNING_RATE * gw2[n];
    for (let n = 0; n < 3; n++) b2[n] -= LEARNING_RATE * gb2[n];
  }

  // Fold standardisation: (x - mean) / std · W1 + b1  =  x · (W1 / std) + (b1 - Σ mean/std · W1).
  const fw1 = new Float32Array(w1.length), fb1 = new Float32Array(HIDDEN);
  for (let k = 0; k < HIDDEN; k++) {
    let bias = b1[k];
    for (let j = 0; j < 4; j++) {
      fw1[j * HIDDEN + k] = w1[j * HIDDEN + k] / std[j];
      bias -= (mean[j] / std[j]) * w1[j * HIDDEN + k];
    }
    fb1[k] = bias;
  }
  return { w1: fw1, b1: fb1, w2, b2 };
}

function floatTensor(name: string, dims: number[], values: Float32Array) {
  const raw = new Uint8Array(values.length * 4);
  const view = new DataView(raw.buffer);
  values.forEach((v, i) => view.setFloat32(i * 4, v, true)); // ONNX raw_data is little-endian
  return { name, dims, data_type: OnnxDataType.FLOAT, raw_data: raw };
}

const intAttr = (name: string, i: number) => ({ name, type: OnnxAttributeType.INT, i });

const tensorType = (elemType: number, dims: (number | string)[]) => ({
  tensor_type: { elem_type: elemType, shape: { dim: dims.map((d) => (typeof d === 'number' ? { dim_value: d } : { dim_param: d })) } },
});

/** Encodes the trained MLP as an ONNX ModelProto (IR 7, opset 13). */
export function encodeIrisModel(m: IrisMlp): Uint8Array {
  const model = {
    ir_version: 7,
    opset_import: [{ domain: '', version: 13 }],
    producer_name: 'pyml-example-onnx-iris',
    producer_version: '1.0.0',
    doc_string: 'Iris species classifier: MLP 4-8-3 trained by examples/onnx-iris/make-model.ts',
    metadata_props: [{ key: 'labels', value: SPECIES.join(',') }],
    graph: {
      name: 'iris_mlp',
      node: [
        { op_type: 'Gemm', name: 'dense1', input: ['input', 'W1', 'B1'], output: ['dense1_out'] },
        { op_type: 'Relu', name: 'relu1', input: ['dense1_out'], output: ['relu1_out'] },
        { op_type: 'Gemm', name: 'dense2', input: ['relu1_out', 'W2', 'B2'], output: ['logits'] },
        { op_type: 'Softmax', name: 'softmax', input: ['logits'], output: ['probabilities'], attribute: [intAttr('axis', 1)] },
        { op_type: 'ArgMax', name: 'argmax', input: ['probabilities'], output: ['label'], attribute: [intAttr('axis', 1), intAttr('keepdims', 0)] },
      ],
      initializer: [
        floatTensor('W1', [4, HIDDEN], m.w1), floatTensor('B1', [HIDDEN], m.b1),
        floatTensor('W2', [HIDDEN, 3], m.w2), floatTensor('B2', [3], m.b2),
      ],
      input: [{ name: 'input', type: tensorType(OnnxDataType.FLOAT, ['N', 4]) }],
      output: [
        { name: 'probabilities', type: tensorType(OnnxDataType.FLOAT, ['N', 3]) },
        { name: 'label', type: tensorType(OnnxDataType.INT64, ['N']) },
      ],
    },
  };
  const { ModelProto } = onnxTypes;
  const problem = ModelProto.verify(model);
  if (problem) throw new Error(`make-model: invalid ModelProto: ${problem}`);
  return ModelProto.encode(ModelProto.fromObject(model)).finish();
}

/** The whole pipeline: CSV text in, model.onnx bytes out. */
export function makeIrisModel(csv = readFileSync(IRIS_CSV, 'utf8')): Uint8Array {
  return encodeIrisModel(train(parseIris(csv)));
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  const out = process.argv[2] ?? MODEL_PATH;
  const bytes = makeIrisModel();
  mkdirSync(dirname(out), { recursive: true });
  writeFileSync(out, bytes);
  console.log(`wrote ${out} (${bytes.length} bytes)`);
}
