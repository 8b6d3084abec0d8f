import type { DataType } from './dtype.ts';

/** One named input or output. A shape entry of -1 means "any size" (usually the batch dimension). */
export interface TensorSpec {
  name: string;
  dtype: DataType;
  shape: number[];
}

/**
 * What a model takes and returns. For a dataframe model every entry is a column: shape is [-1] and dtype is the
 * column's element type.
 */
export interface Signature {
  inputs: TensorSpec[];
  outputs: TensorSpec[];
}

export type ContractKind = 'tensor' | 'dataframe';
