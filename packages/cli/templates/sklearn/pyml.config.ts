import { defineConfig } from '@pyml/core';
import sklearn from '@pyml/plugin-sklearn';

// weights/model.pkl is a pickled scikit-learn estimator; the build converts it to ONNX (needs python3 with
// scikit-learn and onnx on the build machine, not in the image). No `model`: the plugin supplies a DataFrameModel,
// one column per feature in (feature_names_in_), `label` and `probability_<class>` out.
export default defineConfig({
  name: '__NAME__',
  version: '0.1.0',
  weights: ['./weights/model.pkl'],
  plugins: [sklearn()],
});
