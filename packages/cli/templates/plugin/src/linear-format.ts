import type { Signature } from '@pyml/contract';

/** y = x · weights + bias; weights is [inputs][outputs]. */
export interface LinearModel {
  inputs: number;
  outputs: number;
  weights: number[][];
  bias: number[];
}

/** Parses and validates a .linear.json file; every error names the file and the field. */
export function parseLinearModel(text: string, file: string): LinearModel {
  let json: { weights?: unknown; bias?: unknown };
  try {
    json = JSON.parse(text) as typeof json;
  } catch (error) {
    throw new Error(`${file}: not valid JSON: ${(error as Error).message}`);
  }
  const { weights, bias } = json;
  if (!Array.isArray(weights) || weights.length === 0 || !weights.every((r) => Array.isArray(r) && r.length > 0 && r.every((v) => typeof v === 'number'))) {
    throw new Error(`${file}: "weights" must be a non-empty array of non-empty number arrays ([inputs][outputs])`);
  }
  const outputs = (weights[0] as number[]).length;
  const ragged = weights.findIndex((r) => (r as number[]).length !== outputs);
  if (ragged >= 0) throw new Error(`${file}: weights[${ragged}] has ${(weights[ragged] as number[]).length} values, weights[0] has ${outputs}`);
  if (!Array.isArray(bias) || bias.length !== outputs || !bias.every((v) => typeof v === 'number')) {
    throw new Error(`${file}: "bias" must be an array of ${outputs} numbers`);
  }
  return { inputs: weights.length, outputs, weights: weights as number[][], bias: bias as number[] };
}

export function linearSignature(m: LinearModel): Signature {
  return {
    inputs: [{ name: 'input', dtype: 'FP32', shape: [-1, m.inputs] }],
    outputs: [{ name: 'output', dtype: 'FP32', shape: [-1, m.outputs] }],
  };
}

/** Coefficients as CSV (one row per input, one column per output; last row is the bias) → .linear.json text. */
export function csvToLinearJson(csv: string, file: string): string {
  const rows = csv.trim().split('\n').map((line, i) => line.split(',').map((cell, j) => {
    const v = Number(cell);
    if (!Number.isFinite(v)) throw new Error(`${file}: line ${i + 1}, column ${j + 1}: "${cell}" is not a number`);
    return v;
  }));
  if (rows.length < 2) throw new Error(`${file}: needs at least one weights row and the bias row`);
  return `${JSON.stringify({ weights: rows.slice(0, -1), bias: rows[rows.length - 1] })}\n`;
}
