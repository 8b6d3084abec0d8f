import { defineConfig } from '@pyml/core';
import pytorch from '@pyml/plugin-pytorch';

// The model runs in a Python sidecar (TorchScript + src/model.py) the image's entrypoint talks to over a Unix
// socket. TorchScript files carry no signature: declare it.
export default defineConfig({
  name: '__NAME__',
  version: '0.1.0',
  kind: 'tensor',
  weights: ['./weights/model.pt'],
  signature: {
    inputs: [{ name: 'input', dtype: 'FP32', shape: [-1, 3] }],
    outputs: [{ name: 'probabilities', dtype: 'FP32', shape: [-1, 2] }],
  },
  plugins: [pytorch({ model: './src/model.py' })],
});
