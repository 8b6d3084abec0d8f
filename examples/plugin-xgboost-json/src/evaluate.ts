import type { Ensemble, Tree } from './model-format.ts';

/** The leaf a row reaches: features compared as float32, `x < split` goes left, NaN takes the default branch. */
function leafValue(tree: Tree, x: Float32Array, offset: number): number {
  let node = 0;
  while (tree.left[node] !== -1) {
    const v = x[offset + tree.feature[node]!]!;
    node = Number.isNaN(v) ? (tree.defaultLeft[node] ? tree.left[node]! : tree.right[node]!) : v < tree.threshold[node]! ? tree.left[node]! : tree.right[node]!;
  }
  return tree.threshold[node]!;
}

/** Raw margins, [rows, numGroup] row-major: base margin plus the leaf of every tree in the row's group. */
export function margins(model: Ensemble, x: Float32Array, rows: number): Float64Array {
  const out = new Float64Array(rows * model.numGroup).fill(model.baseMargin);
  for (let r = 0; r < rows; r++) {
    const offset = r * model.numFeature;
    for (const tree of model.trees) out[r * model.numGroup + tree.group] += leafValue(tree, x, offset);
  }
  return out;
}

/** Margins → outputs as the objective defines them (sigmoid, softmax over groups, exp, or identity). */
export function transform(model: Ensemble, m: Float64Array, rows: number): Float64Array {
  const out = new Float64Array(m.length);
  const g = model.numGroup;
  for (let r = 0; r < rows; r++) {
    if (model.link === 'softmax') {
      let max = -Infinity;
      for (let k = 0; k < g; k++) max = Math.max(max, m[r * g + k]!);
      let sum = 0;
      for (let k = 0; k < g; k++) sum += out[r * g + k] = Math.exp(m[r * g + k]! - max);
      for (let k = 0; k < g; k++) out[r * g + k]! /= sum;
    } else {
      for (let k = 0; k < g; k++) {
        const v = m[r * g + k]!;
        out[r * g + k] = model.link === 'sigmoid' ? 1 / (1 + Math.exp(-v)) : model.link === 'exp' ? Math.exp(v) : v;
      }
    }
  }
  return out;
}
