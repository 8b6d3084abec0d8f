import { defineConfig } from '@pyml/core';
import __PLUGIN_ID__ from '__PACKAGE__';

// A model project using the plugin (it imports the plugin by its package name: a Node self-reference).
// No `model`: the plugin's defaultModel serves the weights. weights/model.linear.csv is converted by transformWeights.
export default defineConfig({
  name: '__PLUGIN__-example',
  version: '0.1.0',
  weights: ['./weights/model.linear.csv'],
  plugins: [__PLUGIN_ID__()],
});
