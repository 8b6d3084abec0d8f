/**
 * How a dataframe maps onto an ONNX model's tensors. One input or output per column when the tensor is [N] or
 * [N,1]; a [N,K] input takes K columns concatenated (as skl2onnx's single float input `X` expects) and a [N,K]
 * output is split into K columns. Computed at build time from the model and baked into the default model.
 */
import type { DataType, Signature, TensorSpec } from '@pyml/contract';

export type InputPlan =
  | { kind: 'column'; input: string; column: string; dtype: DataType; rank: 1 | 2 }
  | { kind: 'concat'; input: string; columns: string[]; dtype: DataType };

export type OutputPlan =
  | { kind: 'column'; output: string; column: string; dtype: DataType }
  | { kind: 'split'; output: string; columns: string[]; dtype: DataType };

export interface DataFramePlan {
  /** Base name of the ONNX file in the image's weights directory. */
  weights: string;
  inputs: InputPlan[];
  outputs: OutputPlan[];
}

/** Column names for skl2onnx's conventional output names (our converter already names its outputs as columns). */
const COLUMN_NAME: Record<string, string> = { output_label: 'label', output_probability: 'probability' };

/** Signature of the dataframe the plan serves: every column is [-1]. */
export function planSignature(plan: DataFramePlan): Signature {
  const col = (name: string, dtype: DataType): TensorSpec => ({ name, dtype, shape: [-1] });
  return {
    inputs: plan.inputs.flatMap((p) => (p.kind === 'column' ? [col(p.column, p.dtype)] : p.columns.map((c) => col(c, p.dtype)))),
    outputs: plan.outputs.flatMap((p) => (p.kind === 'column' ? [col(p.column, p.dtype)] : p.columns.map((c) => col(c, p.dtype)))),
  };
}

/** The plan for an ONNX model's tensor signature; throws naming the tensor when a shape has no column form. */
export function dataFramePlan(weights: string, onnx: Signature, where: string): DataFramePlan {
  const widthOf = (t: TensorSpec, role: string): number => {
    const rest = t.shape.slice(1);
    if (rest.length === 0) return 1;
    if (rest.length === 1 && rest[0]! > 0) return rest[0]!;
    throw new Error(`${where}: ${role} "${t.name}" has shape [${t.shape.join(', ')}]; a dataframe model needs [N] or [N, K] with a fixed K`);
  };
  const inputs = onnx.inputs.map((t): InputPlan => {
    const k = widthOf(t, 'input');
    if (t.shape.length === 1) return { kind: 'column', input: t.name, column: t.name, dtype: t.dtype, rank: 1 };
    if (k === 1) return { kind: 'column', input: t.name, column: t.name, dtype: t.dtype, rank: 2 };
    return { kind: 'concat', input: t.name, columns: Array.from({ length: k }, (_, i) => `${t.name}_${i}`), dtype: t.dtype };
  });
  const outputs = onnx.outputs.map((t): OutputPlan => {
    const k = widthOf(t, 'output');
    const base = COLUMN_NAME[t.name] ?? t.name;
    if (k === 1) return { kind: 'column', output: t.name, column: base, dtype: t.dtype };
    return { kind: 'split', output: t.name, columns: Array.from({ length: k }, (_, i) => `${base}_${i}`), dtype: t.dtype };
  });
  const seen = new Set<string>();
  const signature = planSignature({ weights, inputs, outputs });
  for (const spec of [...signature.inputs, ...signature.outputs]) {
    if (seen.has(spec.name)) throw new Error(`${where}: two columns would be named "${spec.name}"; rename the model's inputs/outputs`);
    seen.add(spec.name);
  }
  return { weights, inputs, outputs };
}
