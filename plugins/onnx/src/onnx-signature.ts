import type { Signature, TensorSpec } from '@pyml/contract';
import type { OnnxModelInfo, OnnxTypeInfo, OnnxValueInfo } from './onnx-reader.ts';
import { oipDtypeOf, onnxElemTypeName } from './onnx-dtype.ts';

/** A graph input or output that has no tensor form in the Open Inference Protocol. */
export interface NonTensorValue {
  role: 'input' | 'output';
  name: string;
  /** ONNX spelling of its type, e.g. `seq(map(int64,tensor(float)))`. */
  type: string;
  reason: string;
}

export interface OnnxSignature {
  /** Tensor-typed inputs and outputs only. */
  signature: Signature;
  /** Everything left out of `signature` and why (ZipMap's seq(map) outputs, bfloat16 tensors, ...). */
  nonTensor: NonTensorValue[];
  /** Tensors whose rank the model does not declare; their shape is given as [-1]. */
  unknownRank: string[];
}

/** ONNX's notation for a value type: `tensor(float)`, `seq(map(int64,tensor(float)))`. */
export function formatOnnxType(t: OnnxTypeInfo): string {
  switch (t.kind) {
    case 'tensor': return `tensor(${onnxElemTypeName(t.elemType)})` + (t.shape ? `[${t.shape.join(',')}]` : '');
    case 'sparse_tensor': return `sparse_tensor(${onnxElemTypeName(t.elemType)})`;
    case 'sequence': return `seq(${formatOnnxType(t.elem)})`;
    case 'map': return `map(${onnxElemTypeName(t.keyType)},${formatOnnxType(t.value)})`;
    case 'optional': return `optional(${formatOnnxType(t.elem)})`;
    default: return 'unknown';
  }
}

/**
 * Infers the pyml signature of an ONNX model: dtypes mapped to OIP names, dims kept when fixed and -1 when symbolic
 * (dim_param such as "N") or unknown.
 */
export function onnxSignature(info: OnnxModelInfo): OnnxSignature {
  const nonTensor: NonTensorValue[] = [];
  const unknownRank: string[] = [];
  const convert = (role: 'input' | 'output') => (v: OnnxValueInfo): TensorSpec[] => {
    const t = v.type;
    if (t.kind !== 'tensor') {
      nonTensor.push({ role, name: v.name, type: formatOnnxType(t), reason: `${t.kind} values have no tensor form` });
      return [];
    }
    const dtype = oipDtypeOf(t.elemType);
    if (!dtype) {
      nonTensor.push({ role, name: v.name, type: formatOnnxType(t), reason: `element type ${onnxElemTypeName(t.elemType)} has no Open Inference Protocol dtype` });
      return [];
    }
    if (!t.shape) unknownRank.push(v.name);
    const shape = t.shape ? t.shape.map((d) => (typeof d === 'number' && d >= 0 ? d : -1)) : [-1];
    return [{ name: v.name, dtype, shape }];
  };
  return {
    signature: { inputs: info.inputs.flatMap(convert('input')), outputs: info.outputs.flatMap(convert('output')) },
    nonTensor,
    unknownRank,
  };
}
