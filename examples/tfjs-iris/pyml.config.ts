import { defineConfig } from '@pyml/core';
import tfjs from '@pyml/plugin-tfjs';

// weights/model is a TF.js layers model directory (model.json + weights.bin) made by make-model.ts. No `model`:
// the plugin's pass-through model serves it; the signature is read from the model.
export default defineConfig({
  name: 'tfjs-iris',
  version: '1.0.0',
  weights: ['./weights/model'],
  plugins: [tfjs()],
});
