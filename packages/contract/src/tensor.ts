import { type DataType, type TensorDataMap, typedArrayFor } from './dtype.ts';

/** A named-less tensor: element type, shape (row-major), and its flat data. */
export interface Tensor<D extends DataType = DataType> {
  dtype: D;
  shape: number[];
  data: TensorDataMap[D];
}
export type Tensors = Record<string, Tensor>;

export function elementCount(shape: readonly number[]): number {
  let n = 1;
  for (const d of shape) n *= d;
  return n;
}

/** Builds a tensor, checking that the data length matches the shape. */
export function tensor<D extends DataType>(dtype: D, shape: number[], data: TensorDataMap[D] | ArrayLike<number> | ArrayLike<bigint>): Tensor<D> {
  let typed: TensorDataMap[D];
  if (dtype === 'BYTES') typed = Array.from(data as ArrayLike<string>, String) as TensorDataMap[D];
  else {
    const Ctor = typedArrayFor(dtype)!;
    typed = (data instanceof Ctor ? data : Ctor.from(data as ArrayLike<number>)) as unknown as TensorDataMap[D];
  }
  const expected = elementCount(shape);
  if (typed.length !== expected) {
    throw new RangeError(`tensor of shape [${shape.join(', ')}] needs ${expected} elements, got ${typed.length}`);
  }
  return { dtype, shape, data: typed };
}
