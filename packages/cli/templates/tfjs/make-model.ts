/**
 * Writes weights/model: a tiny TF.js layers model (3 features → 2 classes, seeded weights, untrained), so the
 * project builds and predicts before you bring your own model. Replace weights/model with your model directory
 * (model.save('file://...') or tensorflowjs_converter output) and delete this file.
 *
 *   node --import tsx make-model.ts [OUT_DIR]
 */
import { mkdirSync, renameSync, rmSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import * as tf from '@tensorflow/tfjs';
import { fileSaveHandler } from '@pyml/plugin-tfjs/file-io';

/** Writes the model directory to `out` (temp name, then rename: never a half-written directory). */
export async function writeModel(out: string): Promise<void> {
  await tf.setBackend('cpu');
  tf.env().set('PROD', true); // no "install tfjs-node" banner: the CPU backend is enough for this
  const input = tf.input({ shape: [3], name: 'input' });
  const output = tf.layers.dense({ units: 2, activation: 'softmax', name: 'probabilities', kernelInitializer: tf.initializers.glorotUniform({ seed: 1 }) }).apply(input) as tf.SymbolicTensor;
  const model = tf.model({ inputs: input, outputs: output });
  mkdirSync(dirname(out), { recursive: true });
  const tmp = `${out}.tmp`;
  rmSync(tmp, { recursive: true, force: true });
  await model.save(fileSaveHandler(tmp));
  renameSync(tmp, out);
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  const out = process.argv[2] ?? join(dirname(fileURLToPath(import.meta.url)), 'weights', 'model');
  await writeModel(out);
  console.log(`wrote ${out}`);
}
