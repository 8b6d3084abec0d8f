import { defineConfig } from '@pyml/core';
import onnx from '@pyml/plugin-onnx';

// The signature (inputs, outputs, dtypes, shapes) is read from weights/model.onnx; declare `signature` here to
// pin it, and the build checks the declaration against the model.
export default defineConfig({
  name: '__NAME__',
  version: '0.1.0',
  model: './src/model.ts',
  kind: 'tensor',
  weights: ['./weights/model.onnx'],
  plugins: [onnx()],
});
