import type { DataType } from '@pyml/contract';
import { OnnxDataType } from './onnx-data-type.ts';

/** ONNX element type → Open Inference Protocol dtype. Types with no OIP counterpart (bfloat16, complex, float8, int4) are absent. */
const TO_OIP: Partial<Record<number, DataType>> = {
  [OnnxDataType.FLOAT]: 'FP32', [OnnxDataType.DOUBLE]: 'FP64', [OnnxDataType.FLOAT16]: 'FP16',
  [OnnxDataType.INT8]: 'INT8', [OnnxDataType.INT16]: 'INT16', [OnnxDataType.INT32]: 'INT32', [OnnxDataType.INT64]: 'INT64',
  [OnnxDataType.UINT8]: 'UINT8', [OnnxDataType.UINT16]: 'UINT16', [OnnxDataType.UINT32]: 'UINT32', [OnnxDataType.UINT64]: 'UINT64',
  [OnnxDataType.BOOL]: 'BOOL', [OnnxDataType.STRING]: 'BYTES',
};

const NAMES: Record<number, string> = Object.fromEntries(
  Object.entries(OnnxDataType).map(([name, code]) => [code, name.toLowerCase()]),
);

export function oipDtypeOf(onnxElemType: number): DataType | undefined {
  return TO_OIP[onnxElemType];
}

/** ONNX's own spelling of an element type ('float', 'int64'), as in `tensor(float)`. */
export function onnxElemTypeName(onnxElemType: number): string {
  return NAMES[onnxElemType] ?? `elem_type ${onnxElemType}`;
}
