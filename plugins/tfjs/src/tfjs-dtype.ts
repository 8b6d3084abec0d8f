import type { DataType } from '@pyml/contract';

/** TF.js dtypes that have an Open Inference Protocol form (int64 does not exist in TF.js). */
export const FROM_TFJS: Record<string, DataType> = { float32: 'FP32', int32: 'INT32', bool: 'BOOL', string: 'BYTES' };
export const TO_TFJS: Partial<Record<DataType, 'float32' | 'int32' | 'bool' | 'string'>> = { FP32: 'float32', INT32: 'int32', BOOL: 'bool', BYTES: 'string' };
