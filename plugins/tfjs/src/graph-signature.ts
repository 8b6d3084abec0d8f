/**
 * The signature of a TF.js graph model, from what its converter left in the manifest. In order: the graph's own
 * node attributes (a Placeholder's dtype and shape), the SavedModel signature the converter copied (top-level
 * `signature` as TF.js 3+ converters write it, or `userDefinedMetadata.signature` as 2.x converters did; TF.js
 * reads the latter first and so do we), an output node's type attribute (`T`, `DstT`, `output_type` ...), and
 * last a trial run on zeros for outputs still without dtype or shape: run at two sizes of every unknown input
 * dimension, an output dimension that follows them is -1.
 */
import * as tf from '@tensorflow/tfjs-core';
import type { GraphModel } from '@tensorflow/tfjs-converter';
import type { Signature } from '@pyml/contract';
import { specOf } from './tfjs-dtype.ts';
import { executeGraph } from './execute-graph.ts';

interface GraphTensorInfo { name: string; dtype?: string; tensorShape?: { dim?: { size: string | number }[]; unknownRank?: boolean } }
interface DeclaredSignature { inputs?: Record<string, GraphTensorInfo>; outputs?: Record<string, GraphTensorInfo> }
interface GraphNode { name: string; op?: string; attr?: Record<string, { type?: string } | undefined> }
interface Described { name: string; dtype?: string; shape?: number[] }
type TfjsDtype = 'float32' | 'int32' | 'bool' | 'string';

/** TensorFlow dtypes as TF.js loads them (it has no int64 or float64: they become int32 and float32). */
const GRAPH_DTYPES: Record<string, TfjsDtype> = {
  DT_FLOAT: 'float32', DT_DOUBLE: 'float32', DT_HALF: 'float32', DT_INT32: 'int32', DT_INT64: 'int32', DT_INT16: 'int32',
  DT_INT8: 'int32', DT_UINT8: 'int32', DT_UINT16: 'int32', DT_BOOL: 'bool', DT_STRING: 'string',
};
/** Ops whose output is bool whatever their `T`. */
const BOOL_OPS = new Set(['Equal', 'NotEqual', 'Greater', 'GreaterEqual', 'Less', 'LessEqual', 'LogicalAnd', 'LogicalOr', 'LogicalNot', 'IsNan', 'IsInf', 'IsFinite']);
/** Attributes that give an op's output dtype, most specific first. */
const TYPE_ATTRS = ['dtype', 'output_type', 'out_type', 'DstT', 'Tout', 'T'];
/** Sizes given to unknown input dimensions in the trial runs. */
const TRIAL_SIZES = [2, 3] as const;

interface Artifacts { modelTopology?: unknown; signature?: unknown; userDefinedMetadata?: { signature?: unknown } }

/** The converter's signature and where it was found (for messages). */
export function declaredSignature(artifacts: Artifacts): { signature?: DeclaredSignature; from?: string } {
  const fromMetadata = artifacts.userDefinedMetadata?.signature;
  if (fromMetadata && typeof fromMetadata === 'object') return { signature: fromMetadata as DeclaredSignature, from: 'userDefinedMetadata.signature' };
  if (artifacts.signature && typeof artifacts.signature === 'object') return { signature: artifacts.signature as DeclaredSignature, from: 'signature' };
  return {};
}

function infoFor(entries: Record<string, GraphTensorInfo> | undefined, name: string): GraphTensorInfo | undefined {
  return Object.entries(entries ?? {}).find(([key, i]) => i?.name === name || i?.name === `${name}:0` || key === name)?.[1];
}

function shapeOfInfo(info: GraphTensorInfo | undefined): number[] | undefined {
  if (!info?.tensorShape || info.tensorShape.unknownRank || !Array.isArray(info.tensorShape.dim)) return undefined;
  return info.tensorShape.dim.map((d) => Number(d.size));
}

function dtypeOfNode(node: GraphNode | undefined): TfjsDtype | undefined {
  if (!node) return undefined;
  if (node.op && BOOL_OPS.has(node.op)) return 'bool';
  for (const key of TYPE_ATTRS) {
    const t = node.attr?.[key]?.type;
    if (t && GRAPH_DTYPES[t]) return GRAPH_DTYPES[t];
  }
  return undefined;
}

function trialInput(spec: Described, size: number): tf.Tensor {
  const shape = spec.shape!.map((d) => (d < 0 ? size : d));
  if (spec.dtype === 'string') return tf.tensor(new Array<string>(shape.reduce((a, b) => a * b, 1)).fill(''), shape, 'string');
  return tf.zeros(shape, spec.dtype as 'float32' | 'int32' | 'bool');
}

/** Dtype and shape of every output from runs on zeros; dimensions that change with the input sizes are -1. */
async function trialRun(model: GraphModel, inputs: Described[], outputs: Described[], where: string, missing: string): Promise<Map<string, { dtype: string; shape: number[] }>> {
  const shapeless = inputs.find((i) => !i.shape || !i.dtype);
  if (shapeless) {
    throw new Error(`${where}: ${missing}, and a trial run to learn them needs every input's dtype and shape, which input "${shapeless.name}" lacks (no "shape" attribute on its Placeholder); add a signature to the manifest`);
  }
  const names = outputs.map((o) => o.name);
  const runs: { dtype: string; shape: number[] }[][] = [];
  for (const size of TRIAL_SIZES) {
    const feeds: tf.NamedTensorMap = Object.fromEntries(inputs.map((i) => [i.name, trialInput(i, size)]));
    let ys: tf.Tensor[] = [];
    try {
      ys = await executeGraph(model, feeds, names);
      runs.push(ys.map((y) => ({ dtype: y.dtype, shape: [...y.shape] })));
    } catch (error) {
      throw new Error(`${where}: ${missing}, and a trial run on zeros (unknown input dimensions = ${size}) failed: ${(error as Error).message}; add a signature to the manifest`, { cause: error });
    } finally {
      tf.dispose([...Object.values(feeds), ...ys]);
    }
  }
  const [a, b] = runs as [{ dtype: string; shape: number[] }[], { dtype: string; shape: number[] }[]];
  return new Map(names.map((name, k) => [name, {
    dtype: a[k]!.dtype,
    shape: a[k]!.shape.length === b[k]!.shape.length ? a[k]!.shape.map((d, j) => (d === b[k]!.shape[j] ? d : -1)) : [-1],
  }]));
}

export async function graphSignature(model: GraphModel, artifacts: Artifacts, where: string): Promise<Signature> {
  const { signature: declared } = declaredSignature(artifacts);
  const topology = artifacts.modelTopology as { node?: GraphNode[] } | undefined;
  const nodes = new Map((topology?.node ?? []).map((n) => [n.name, n]));
  const describe = (entries: Record<string, GraphTensorInfo> | undefined, t: { name: string; shape?: number[]; dtype?: string }): Described => {
    const info = infoFor(entries, t.name);
    const infoDtype = info?.dtype ? GRAPH_DTYPES[info.dtype] : undefined;
    return { name: t.name, dtype: t.dtype ?? infoDtype ?? dtypeOfNode(nodes.get(t.name.split(':')[0]!)), shape: t.shape ?? shapeOfInfo(info) };
  };
  const inputs = model.inputs.map((t) => describe(declared?.inputs, t));
  const outputs = model.outputs.map((t) => describe(declared?.outputs, t));
  const noDtype = inputs.find((i) => !i.dtype);
  if (noDtype) {
    throw new Error(`${where}: graph input "${noDtype.name}" has no dtype: its Placeholder has no "dtype" attribute and the manifest has no signature naming it ("signature" or "userDefinedMetadata.signature")`);
  }
  const unknown = outputs.filter((o) => !o.dtype || !o.shape);
  if (unknown.length) {
    const missing = `graph output${unknown.length > 1 ? 's' : ''} ${unknown.map((o) => `"${o.name}"`).join(', ')} ha${unknown.length > 1 ? 've' : 's'} no ${unknown.some((o) => !o.dtype) ? 'dtype or ' : ''}shape in the graph nor in a signature`;
    const learned = await trialRun(model, inputs, outputs, where, missing);
    for (const o of unknown) {
      o.dtype ??= learned.get(o.name)!.dtype;
      o.shape ??= learned.get(o.name)!.shape;
    }
  }
  return {
    inputs: inputs.map((i) => specOf(i.name, i.shape, i.dtype!, where)),
    outputs: outputs.map((o) => specOf(o.name, o.shape, o.dtype!, where)),
  };
}
