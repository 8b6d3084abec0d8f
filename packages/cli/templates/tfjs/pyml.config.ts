import { defineConfig } from '@pyml/core';
import tfjs from '@pyml/plugin-tfjs';

// weights/model is a TF.js model directory (model.json + weights.bin); the signature is read from it.
export default defineConfig({
  name: '__NAME__',
  version: '0.1.0',
  model: './src/model.ts',
  kind: 'tensor',
  weights: ['./weights/model'],
  plugins: [tfjs()],
});
