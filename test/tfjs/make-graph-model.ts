/**
 * Test fixture: writes a small TF.js graph-format model (GraphDef JSON: x → MatMul W → Add b → Softmax → Identity)
 * with fixed weights, as tensorflowjs_converter would lay it out (model.json + one shard).
 */
import { mkdirSync, renameSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

export const GRAPH_W = Float32Array.from({ length: 12 }, (_, i) => ((i * 7) % 5) / 4 - 0.5);
export const GRAPH_B = Float32Array.from([0.1, -0.2, 0.3]);

export function writeGraphModel(dir: string): void {
  mkdirSync(dir, { recursive: true });
  const float = { type: 'DT_FLOAT' };
  const node = [
    { name: 'x', op: 'Placeholder', attr: { dtype: float, shape: { shape: { dim: [{ size: '-1' }, { size: '4' }] } } } },
    { name: 'W', op: 'Const', attr: { dtype: float, value: { tensor: { dtype: 'DT_FLOAT', tensorShape: { dim: [{ size: '4' }, { size: '3' }] } } } } },
    { name: 'b', op: 'Const', attr: { dtype: float, value: { tensor: { dtype: 'DT_FLOAT', tensorShape: { dim: [{ size: '3' }] } } } } },
    { name: 'logits/MatMul', op: 'MatMul', input: ['x', 'W'], attr: { T: float, transpose_a: { b: false }, transpose_b: { b: false } } },
    { name: 'logits', op: 'AddV2', input: ['logits/MatMul', 'b'], attr: { T: float } },
    { name: 'softmax', op: 'Softmax', input: ['logits'], attr: { T: float } },
    { name: 'Identity', op: 'Identity', input: ['softmax'], attr: { T: float } },
  ];
  const json = {
    format: 'graph-model',
    generatedBy: 'pyml test',
    convertedBy: null,
    modelTopology: { node, library: {}, versions: { producer: 1 } },
    // As tensorflowjs_converter writes it from a SavedModel signature: it carries the outputs' dtypes and shapes.
    signature: {
      inputs: { 'x:0': { name: 'x:0', dtype: 'DT_FLOAT', tensorShape: { dim: [{ size: '-1' }, { size: '4' }] } } },
      outputs: { 'Identity:0': { name: 'Identity:0', dtype: 'DT_FLOAT', tensorShape: { dim: [{ size: '-1' }, { size: '3' }] } } },
    },
    weightsManifest: [{ paths: ['group1-shard1of1.bin'], weights: [{ name: 'W', shape: [4, 3], dtype: 'float32' }, { name: 'b', shape: [3], dtype: 'float32' }] }],
  };
  writeFileSync(join(dir, 'model.json'), JSON.stringify(json));
  writeFileSync(join(dir, 'group1-shard1of1.bin'), Buffer.concat([Buffer.from(GRAPH_W.buffer), Buffer.from(GRAPH_B.buffer)]));
}

export interface TwoHeadOptions {
  /** Where the converter's signature is kept: top level (TF.js 3+), userDefinedMetadata (2.x), or nowhere. */
  signature: 'top' | 'userDefinedMetadata' | 'none';
  /** The manifest's file name (default model.json). */
  manifest?: string;
  /** Type attributes (`T`, `output_type`) on the output nodes; without them only a trial run tells their dtypes. */
  typeAttrs?: boolean;
}

/**
 * A graph model with two inputs and two outputs: x FP32 [-1,4] and scale INT32 [-1,1] →
 * probabilities = softmax((x·W + b) · scale) FP32 [-1,3] and class = argmax INT32 [-1].
 */
export function writeTwoHeadGraphModel(dir: string, options: TwoHeadOptions): void {
  mkdirSync(dir, { recursive: true });
  const float = { type: 'DT_FLOAT' };
  const int = { type: 'DT_INT32' };
  const typed = options.typeAttrs !== false;
  const node = [
    { name: 'x', op: 'Placeholder', attr: { dtype: float, shape: { shape: { dim: [{ size: '-1' }, { size: '4' }] } } } },
    { name: 'scale', op: 'Placeholder', attr: { dtype: int, shape: { shape: { dim: [{ size: '-1' }, { size: '1' }] } } } },
    { name: 'W', op: 'Const', attr: { dtype: float, value: { tensor: { dtype: 'DT_FLOAT', tensorShape: { dim: [{ size: '4' }, { size: '3' }] } } } } },
    { name: 'b', op: 'Const', attr: { dtype: float, value: { tensor: { dtype: 'DT_FLOAT', tensorShape: { dim: [{ size: '3' }] } } } } },
    { name: 'axis', op: 'Const', attr: { dtype: int, value: { tensor: { dtype: 'DT_INT32', tensorShape: {} } } } },
    { name: 'logits/MatMul', op: 'MatMul', input: ['x', 'W'], attr: { T: float, transpose_a: { b: false }, transpose_b: { b: false } } },
    { name: 'logits', op: 'AddV2', input: ['logits/MatMul', 'b'], attr: { T: float } },
    { name: 'scale_float', op: 'Cast', input: ['scale'], attr: { SrcT: int, DstT: float } },
    { name: 'scaled', op: 'Mul', input: ['logits', 'scale_float'], attr: { T: float } },
    { name: 'probabilities', op: 'Softmax', input: ['scaled'], attr: typed ? { T: float } : {} },
    { name: 'class', op: 'ArgMax', input: ['scaled', 'axis'], attr: typed ? { T: float, Tidx: int, output_type: int } : {} },
  ];
  const tensor = (name: string, dtype: string, dims: number[]) => ({ name, dtype, tensorShape: { dim: dims.map((size) => ({ size: String(size) })) } });
  const signature = {
    inputs: { x: tensor('x:0', 'DT_FLOAT', [-1, 4]), scale: tensor('scale:0', 'DT_INT32', [-1, 1]) },
    outputs: { probabilities: tensor('probabilities:0', 'DT_FLOAT', [-1, 3]), class: tensor('class:0', 'DT_INT32', [-1]) },
  };
  const json = {
    format: 'graph-model',
    generatedBy: '2.8.0',
    convertedBy: 'pyml test',
    modelTopology: { node, library: {}, versions: { producer: 1 } },
    ...(options.signature === 'top' ? { signature } : {}),
    ...(options.signature === 'userDefinedMetadata' ? { userDefinedMetadata: { signature } } : {}),
    weightsManifest: [{
      paths: ['group1-shard1of1.bin'],
      weights: [{ name: 'W', shape: [4, 3], dtype: 'float32' }, { name: 'b', shape: [3], dtype: 'float32' }, { name: 'axis', shape: [], dtype: 'int32' }],
    }],
  };
  writeFileSync(join(dir, options.manifest ?? 'model.json'), JSON.stringify(json));
  writeFileSync(join(dir, 'group1-shard1of1.bin'), Buffer.concat([Buffer.from(GRAPH_W.buffer), Buffer.from(GRAPH_B.buffer), Buffer.from(Int32Array.from([1]).buffer)]));
}

/**
 * A functional layers model with two inputs and two outputs (features [-1,4] and extra [-1,2] → concatenated →
 * `scores` softmax [-1,3] and `amount` linear [-1,1]), seeded weights, saved as `manifest` + weights.bin.
 */
export async function writeTwoHeadLayersModel(dir: string, manifest: string): Promise<void> {
  const tf = await import('@tensorflow/tfjs');
  const { fileSaveHandler } = await import('../../plugins/tfjs/src/file-io.ts');
  const features = tf.input({ shape: [4], name: 'features' });
  const extra = tf.input({ shape: [2], name: 'extra' });
  const joined = tf.layers.concatenate({ name: 'joined' }).apply([features, extra]) as import('@tensorflow/tfjs').SymbolicTensor;
  const hidden = tf.layers.dense({ units: 8, activation: 'relu', name: 'hidden', kernelInitializer: tf.initializers.glorotUniform({ seed: 3 }) }).apply(joined) as import('@tensorflow/tfjs').SymbolicTensor;
  const scores = tf.layers.dense({ units: 3, activation: 'softmax', name: 'scores', kernelInitializer: tf.initializers.glorotUniform({ seed: 4 }) }).apply(hidden) as import('@tensorflow/tfjs').SymbolicTensor;
  const amount = tf.layers.dense({ units: 1, name: 'amount', kernelInitializer: tf.initializers.glorotUniform({ seed: 5 }) }).apply(hidden) as import('@tensorflow/tfjs').SymbolicTensor;
  const model = tf.model({ inputs: [features, extra], outputs: [scores, amount] });
  await model.save(fileSaveHandler(dir));
  model.dispose();
  if (manifest !== 'model.json') renameSync(join(dir, 'model.json'), join(dir, manifest));
}
