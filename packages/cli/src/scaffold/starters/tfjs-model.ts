/**
 * The tfjs starter model of `pyml init`: a TF.js layers model (3 features → 2 classes, dense + softmax,
 * untrained), so a new project builds and predicts before its author brings a model.
 *
 * Written here as the files `model.save('file://…')` gives (model.json + weights.bin) rather than by TF.js itself:
 * loading @tensorflow/tfjs costs a second, and the CLI lists neither it nor the tfjs plugin as a dependency.
 * The topology and the weights are the ones tfjs-layers 4.22 saved for
 *   tf.layers.dense({ units: 2, activation: 'softmax', name: 'probabilities',
 *                     kernelInitializer: tf.initializers.glorotUniform({ seed: 1 }) }) on tf.input({ shape: [3], name: 'input' })
 */
import { mkdir, rename, rm, writeFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';

/** probabilities/kernel [3, 2] (glorotUniform, seed 1), then probabilities/bias [2] (zeros): float32 little-endian. */
const WEIGHTS = [0.05706632882356644, -0.82674640417099, -0.04881352558732033, 0.2660563290119171, -0.7321551442146301, -0.4057072699069977, 0, 0];

const MODEL_JSON = {
  modelTopology: {
    class_name: 'Model',
    config: {
      name: 'model1',
      layers: [
        { name: 'input', class_name: 'InputLayer', config: { batch_input_shape: [null, 3], dtype: 'float32', sparse: false, name: 'input' }, inbound_nodes: [] },
        {
          name: 'probabilities',
          class_name: 'Dense',
          config: {
            units: 2, activation: 'softmax', use_bias: true,
            kernel_initializer: { class_name: 'VarianceScaling', config: { scale: 1, mode: 'fan_avg', distribution: 'uniform', seed: 1 } },
            bias_initializer: { class_name: 'Zeros', config: {} },
            kernel_regularizer: null, bias_regularizer: null, activity_regularizer: null, kernel_constraint: null, bias_constraint: null,
            name: 'probabilities', trainable: true,
          },
          inbound_nodes: [[['input', 0, 0, {}]]],
        },
      ],
      input_layers: [['input', 0, 0]],
      output_layers: [['probabilities', 0, 0]],
    },
    keras_version: 'tfjs-layers 4.22.0',
    backend: 'tensor_flow.js',
  },
  format: 'layers-model',
  generatedBy: 'TensorFlow.js tfjs-layers v4.22.0 (pyml init)',
  convertedBy: null,
  weightsManifest: [{
    paths: ['weights.bin'],
    weights: [
      { name: 'probabilities/kernel', shape: [3, 2], dtype: 'float32' },
      { name: 'probabilities/bias', shape: [2], dtype: 'float32' },
    ],
  }],
};

/** Writes the model directory to `out` (a temporary name, then rename: never a half-written directory). */
export async function writeTfjsStarter(out: string): Promise<void> {
  const tmp = `${out}.tmp`;
  await rm(tmp, { recursive: true, force: true });
  await mkdir(tmp, { recursive: true });
  const bytes = new Uint8Array(WEIGHTS.length * 4);
  const view = new DataView(bytes.buffer);
  WEIGHTS.forEach((v, i) => view.setFloat32(i * 4, v, true)); // little-endian, as TF.js writes weights.bin
  await writeFile(join(tmp, 'model.json'), JSON.stringify(MODEL_JSON));
  await writeFile(join(tmp, 'weights.bin'), bytes);
  await mkdir(dirname(out), { recursive: true });
  await rename(tmp, out);
}
