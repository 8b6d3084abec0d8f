/** Tensor element types, named as in the Open Inference Protocol (KServe V2). */
export const DATA_TYPES = [
  'BOOL', 'UINT8', 'UINT16', 'UINT32', 'UINT64', 'INT8', 'INT16', 'INT32', 'INT64', 'FP16', 'FP32', 'FP64', 'BYTES',
] as const;
export type DataType = (typeof DATA_TYPES)[number];

/** The JavaScript container each dtype travels in. FP16 is kept as raw IEEE half bits; BOOL as 0/1 bytes. */
export interface TensorDataMap {
  BOOL: Uint8Array; UINT8: Uint8Array; UINT16: Uint16Array; UINT32: Uint32Array; UINT64: BigUint64Array;
  INT8: Int8Array; INT16: Int16Array; INT32: Int32Array; INT64: BigInt64Array;
  FP16: Uint16Array; FP32: Float32Array; FP64: Float64Array; BYTES: string[];
}
export type TensorData = TensorDataMap[DataType];

type TypedArrayCtor = {
  new (n: number): Exclude<TensorData, string[]>;
  new (b: ArrayBufferLike, o: number, n: number): Exclude<TensorData, string[]>;
  from(values: ArrayLike<number> | ArrayLike<bigint>): Exclude<TensorData, string[]>;
  BYTES_PER_ELEMENT: number;
};

const CTORS: Record<Exclude<DataType, 'BYTES'>, TypedArrayCtor> = {
  BOOL: Uint8Array, UINT8: Uint8Array, UINT16: Uint16Array, UINT32: Uint32Array, UINT64: BigUint64Array,
  INT8: Int8Array, INT16: Int16Array, INT32: Int32Array, INT64: BigInt64Array,
  FP16: Uint16Array, FP32: Float32Array, FP64: Float64Array,
} as unknown as Record<Exclude<DataType, 'BYTES'>, TypedArrayCtor>;

export function isDataType(value: unknown): value is DataType {
  return typeof value === 'string' && (DATA_TYPES as readonly string[]).includes(value);
}

/** The TypedArray constructor for a fixed-width dtype (undefined for BYTES). */
export function typedArrayFor(dtype: DataType): TypedArrayCtor | undefined {
  return dtype === 'BYTES' ? undefined : CTORS[dtype];
}

/** Bytes per element of a fixed-width dtype; 0 for BYTES (variable width). */
export function bytesPerElement(dtype: DataType): number {
  return dtype === 'BYTES' ? 0 : CTORS[dtype].BYTES_PER_ELEMENT;
}
