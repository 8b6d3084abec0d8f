import type { DataType, TensorSpec } from '@pyml/contract';

/** TF.js dtypes that have an Open Inference Protocol form (int64 does not exist in TF.js). */
export const FROM_TFJS: Record<string, DataType> = { float32: 'FP32', int32: 'INT32', bool: 'BOOL', string: 'BYTES' };
export const TO_TFJS: Partial<Record<DataType, 'float32' | 'int32' | 'bool' | 'string'>> = { FP32: 'float32', INT32: 'int32', BOOL: 'bool', BYTES: 'string' };

/** A signature entry from TF.js's dtype and shape (`null`/-1 dims → -1; an unknown shape → [-1]). */
export function specOf(name: string, shape: readonly (number | null | undefined)[] | undefined, dtype: string, where: string): TensorSpec {
  const oip = FROM_TFJS[dtype];
  if (!oip) throw new Error(`${where}: tensor "${name}" has dtype ${dtype}, which has no Open Inference Protocol form`);
  return { name, dtype: oip, shape: shape ? shape.map((d) => (typeof d === 'number' && d >= 0 ? d : -1)) : [-1] };
}
