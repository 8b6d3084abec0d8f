import { defineConfig } from '@pyml/core';
import pytorch from '@pyml/plugin-pytorch';

export default defineConfig({
  name: 'pytorch-mlp',
  version: '1.0.0',
  kind: 'tensor',
  weights: ['./weights/mlp.pt'],
  signature: {
    inputs: [{ name: 'input', dtype: 'FP32', shape: [-1, 8] }],
    outputs: [
      { name: 'probabilities', dtype: 'FP32', shape: [-1, 3] },
      { name: 'label', dtype: 'INT64', shape: [-1] },
    ],
  },
  plugins: [pytorch({ model: './src/model.py' })],
});
