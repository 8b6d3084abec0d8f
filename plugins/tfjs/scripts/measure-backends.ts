/**
 * Measures the TF.js backends that install here with no download (pure-JS `cpu`, `wasm`) on the example model:
 * median milliseconds per predict call at batch 1 and batch 1024, and the ratio to `cpu` in the same run.
 *
 *   node --import tsx plugins/tfjs/scripts/measure-backends.ts [MODEL_DIR]
 */
import { fileURLToPath } from 'node:url';
import * as tf from '@tensorflow/tfjs';
import '@tensorflow/tfjs-backend-wasm';
import { initBackend, wasmDir } from '../src/adapter.ts';
import { fileLoadHandler } from '../src/file-io.ts';

const dir = process.argv[2] ?? fileURLToPath(new URL('../../../examples/tfjs-iris/weights/model', import.meta.url));

function median(xs: number[]): number { const s = [...xs].sort((a, b) => a - b); return s[Math.floor(s.length / 2)]!; }

async function measure(backend: string) {
  // As in the image: one WASM thread, production flags.
  await initBackend(backend, wasmDir());
  const model = await tf.loadLayersModel(fileLoadHandler(dir));
  const width = model.inputs[0]!.shape[1] as number;
  const result: Record<string, number> = {};
  for (const [batch, reps] of [[1, 300], [1024, 40], [16384, 8]] as const) {
    const x = tf.randomUniform([batch, width], 0, 8, 'float32', 1);
    for (let i = 0; i < 5; i++) (model.predict(x) as tf.Tensor).dataSync();
    const times: number[] = [];
    for (let i = 0; i < reps; i++) {
      const t0 = performance.now();
      const y = model.predict(x) as tf.Tensor;
      await y.data();
      y.dispose();
      times.push(performance.now() - t0);
    }
    x.dispose();
    result[`batch ${batch}`] = median(times);
  }
  model.dispose();
  return result;
}

const cpu = await measure('cpu');
const wasm = await measure('wasm');
console.log(`model ${dir}, node ${process.version}, tfjs ${tf.version.tfjs}`);
console.log('batch       cpu ms   wasm ms   wasm/cpu');
for (const k of Object.keys(cpu)) console.log(`${k.padEnd(11)} ${cpu[k]!.toFixed(3).padStart(7)}   ${wasm[k]!.toFixed(3).padStart(7)}   ${(wasm[k]! / cpu[k]!).toFixed(2)}`);
