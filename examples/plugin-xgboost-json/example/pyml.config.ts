import { defineConfig } from '@pyml/core';
import xgboostJson from 'pyml-plugin-xgboost-json';

export default defineConfig({
  name: 'iris-gbt',
  version: '1.0.0',
  model: './src/model.ts',
  kind: 'tensor',
  weights: ['./weights/model.json'],
  plugins: [xgboostJson()],
});
