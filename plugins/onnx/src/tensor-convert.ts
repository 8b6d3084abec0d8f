import type * as ort from 'onnxruntime-node';
import type { DataType, Tensor } from '@pyml/contract';

/** Open Inference Protocol dtype ↔ onnxruntime tensor type. */
const TO_ORT: Record<DataType, ort.Tensor.Type> = {
  FP32: 'float32', FP64: 'float64', FP16: 'float16',
  INT8: 'int8', INT16: 'int16', INT32: 'int32', INT64: 'int64',
  UINT8: 'uint8', UINT16: 'uint16', UINT32: 'uint32', UINT64: 'uint64',
  BOOL: 'bool', BYTES: 'string',
};
const FROM_ORT = Object.fromEntries(Object.entries(TO_ORT).map(([oip, t]) => [t, oip])) as Record<string, DataType>;

/** Wraps a contract tensor as an onnxruntime tensor without copying its data (FP16 stays as raw half bits). */
export function toOrtTensor(Ctor: typeof ort.Tensor, name: string, t: Tensor): ort.Tensor {
  const type = TO_ORT[t.dtype];
  if (!type) throw new TypeError(`onnx: input "${name}": unsupported dtype ${String(t.dtype)}`);
  // Constructor overloads are keyed by type literal; the dtype table above guarantees the data matches.
  return new Ctor(type as 'float32', t.data as Float32Array, t.shape);
}

/** Converts an onnxruntime output tensor to a contract tensor. */
export function fromOrtTensor(name: string, t: ort.Tensor): Tensor {
  const dtype = FROM_ORT[t.type];
  if (!dtype) throw new TypeError(`onnx: output "${name}" has type ${t.type}, which has no Open Inference Protocol dtype`);
  let data: unknown = t.data;
  if (dtype === 'FP16' && !(data instanceof Uint16Array)) {
    // Where Float16Array exists onnxruntime returns one; the contract carries the raw bits.
    const view = data as ArrayBufferView;
    data = new Uint16Array(view.buffer, view.byteOffset, view.byteLength / 2);
  } else if (dtype === 'BOOL' && !(data instanceof Uint8Array)) {
    data = Uint8Array.from(data as ArrayLike<number>, (v) => (v ? 1 : 0));
  }
  return { dtype, shape: [...t.dims], data } as Tensor;
}
