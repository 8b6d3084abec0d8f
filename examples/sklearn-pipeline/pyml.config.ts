import { defineConfig } from '@pyml/core';
import sklearn from '@pyml/plugin-sklearn';

// No `model`: the plugin converts the Pipeline in weights/model.pkl to ONNX at build time and supplies a dataframe
// model: columns age, tenure_months (INT64), monthly_spend (FP64, NaN allowed), city, plan (BYTES) in; label and
// probability_<class> out. Integer columns are FP64 unless declared: here INT64, as DuckDB reads them from the CSV.
export default defineConfig({
  name: 'sklearn-pipeline',
  version: '1.0.0',
  weights: ['./weights/model.pkl'],
  plugins: [sklearn({ columnTypes: { age: 'INT64', tenure_months: 'INT64' } })],
});
