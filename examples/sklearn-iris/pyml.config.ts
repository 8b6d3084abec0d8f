import { defineConfig } from '@pyml/core';
import sklearn from '@pyml/plugin-sklearn';

// No `model`: the plugin supplies a dataframe model (columns sepal_length..petal_width in; label and
// probability_<species> out) around the ONNX it converts weights/model.pkl into at build time.
export default defineConfig({
  name: 'sklearn-iris',
  version: '1.0.0',
  weights: ['./weights/model.pkl'],
  plugins: [sklearn()],
});
