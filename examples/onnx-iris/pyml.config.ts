import { defineConfig } from '@pyml/core';
import onnx from '@pyml/plugin-onnx';

export default defineConfig({
  name: 'iris',
  version: '1.0.0',
  model: './src/model.ts',
  kind: 'tensor',
  weights: ['./weights/model.onnx'],
  plugins: [onnx()],
});
