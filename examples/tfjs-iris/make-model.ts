/**
 * Trains the example's small layers model on iris (examples/onnx-iris/data/iris.csv) with @tensorflow/tfjs in
 * Node (CPU backend) and saves it as a TF.js model directory with the plugin's file save handler.
 *
 *   node --import tsx examples/tfjs-iris/make-model.ts [OUT_DIR]     (default: examples/tfjs-iris/weights/model)
 *
 * Seeded initialisers, no shuffling: the same tfjs version writes the same weights.
 */
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import * as tf from '@tensorflow/tfjs';
import { fileSaveHandler } from '@pyml/plugin-tfjs/file-io';

const here = fileURLToPath(new URL('.', import.meta.url));
const out = process.argv[2] ?? `${here}weights/model`;
const SPECIES = ['setosa', 'versicolor', 'virginica'];

const rows = readFileSync(fileURLToPath(new URL('../onnx-iris/data/iris.csv', import.meta.url)), 'utf8').trim().split('\n').slice(1).map((l) => l.split(','));
const header = readFileSync(fileURLToPath(new URL('../onnx-iris/data/iris.csv', import.meta.url)), 'utf8').split('\n')[0]!.split(',');
const speciesAt = header.indexOf('species');
const features = rows.map((r) => r.filter((_, i) => i !== speciesAt).slice(-4).map(Number));
const labels = rows.map((r) => SPECIES.indexOf(r[speciesAt]!));

await tf.setBackend('cpu');
const model = tf.sequential({
  layers: [
    tf.layers.dense({ inputShape: [4], units: 16, activation: 'relu', name: 'hidden', kernelInitializer: tf.initializers.glorotUniform({ seed: 1 }) }),
    tf.layers.dense({ units: 3, activation: 'softmax', name: 'probabilities', kernelInitializer: tf.initializers.glorotUniform({ seed: 2 }) }),
  ],
});
model.compile({ optimizer: tf.train.adam(0.05), loss: 'sparseCategoricalCrossentropy', metrics: ['accuracy'] });
const x = tf.tensor2d(features);
const y = tf.tensor1d(labels, 'float32');
const history = await model.fit(x, y, { epochs: 60, batchSize: 150, shuffle: false, verbose: 0 });
await model.save(fileSaveHandler(out));
const acc = history.history.acc ?? history.history.accuracy;
console.log(`wrote ${out}: layers model 4 → 16 → 3, training accuracy ${Number(acc![acc!.length - 1]).toFixed(3)}`);
