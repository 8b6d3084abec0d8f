import {
  ARRAY, BIGINT, BOOLEAN, DOUBLE, type DuckDBType, DuckDBTypeId, FLOAT, INTEGER, SMALLINT, TINYINT, UBIGINT, UINTEGER,
  USMALLINT, UTINYINT, VARCHAR,
} from '@duckdb/node-api';
import type { DataType } from '@pyml/contract';

/** SQL name of the DuckDB type that holds a dtype exactly. FP16 has none (DuckDB has no half float). */
export const SQL_TYPE: Record<Exclude<DataType, 'FP16'>, string> = {
  BOOL: 'BOOLEAN', INT8: 'TINYINT', INT16: 'SMALLINT', INT32: 'INTEGER', INT64: 'BIGINT',
  UINT8: 'UTINYINT', UINT16: 'USMALLINT', UINT32: 'UINTEGER', UINT64: 'UBIGINT',
  FP32: 'FLOAT', FP64: 'DOUBLE', BYTES: 'VARCHAR',
};

const LEAF_TYPES: Record<Exclude<DataType, 'FP16'>, DuckDBType> = {
  BOOL: BOOLEAN, INT8: TINYINT, INT16: SMALLINT, INT32: INTEGER, INT64: BIGINT,
  UINT8: UTINYINT, UINT16: USMALLINT, UINT32: UINTEGER, UINT64: UBIGINT,
  FP32: FLOAT, FP64: DOUBLE, BYTES: VARCHAR,
};

const DTYPE_OF: Partial<Record<DuckDBTypeId, DataType>> = {
  [DuckDBTypeId.BOOLEAN]: 'BOOL', [DuckDBTypeId.TINYINT]: 'INT8', [DuckDBTypeId.SMALLINT]: 'INT16',
  [DuckDBTypeId.INTEGER]: 'INT32', [DuckDBTypeId.BIGINT]: 'INT64', [DuckDBTypeId.UTINYINT]: 'UINT8',
  [DuckDBTypeId.USMALLINT]: 'UINT16', [DuckDBTypeId.UINTEGER]: 'UINT32', [DuckDBTypeId.UBIGINT]: 'UINT64',
  [DuckDBTypeId.FLOAT]: 'FP32', [DuckDBTypeId.DOUBLE]: 'FP64', [DuckDBTypeId.VARCHAR]: 'BYTES',
};

/** The dtype a DuckDB leaf type holds exactly, if any. */
export function dtypeOfDuckDB(type: DuckDBType): DataType | undefined {
  return DTYPE_OF[type.typeId];
}

/** The DuckDB type of a column holding a tensor of `dtype` with per-row dims `rowDims` (nested fixed-size ARRAYs). */
export function duckdbTypeFor(dtype: DataType, rowDims: readonly number[]): DuckDBType {
  if (dtype === 'FP16') throw new Error('FP16 has no DuckDB type');
  let type: DuckDBType = LEAF_TYPES[dtype];
  for (let i = rowDims.length - 1; i >= 0; i--) type = ARRAY(type, rowDims[i]);
  return type;
}

export function sqlTypeFor(dtype: DataType, rowDims: readonly number[]): string {
  if (dtype === 'FP16') throw new Error('FP16 has no DuckDB type');
  // DuckDB writes nested arrays innermost first: UTINYINT[3][2] is 2 arrays of 3, a [-1, 2, 3] tensor.
  return SQL_TYPE[dtype] + [...rowDims].reverse().map((d) => `[${d}]`).join('');
}

/** Integer ranges as [signed, bits]; floats as mantissa bits (the integers they hold exactly). */
const INTS: Partial<Record<DataType, { signed: boolean; bits: number }>> = {
  INT8: { signed: true, bits: 8 }, INT16: { signed: true, bits: 16 }, INT32: { signed: true, bits: 32 }, INT64: { signed: true, bits: 64 },
  UINT8: { signed: false, bits: 8 }, UINT16: { signed: false, bits: 16 }, UINT32: { signed: false, bits: 32 }, UINT64: { signed: false, bits: 64 },
};
const FLOAT_MANTISSA: Partial<Record<DataType, number>> = { FP32: 24, FP64: 53 };

/**
 * Whether every value of `from` is exactly representable in `to`: the same type, a wider integer (unsigned into a
 * wider signed one too), an integer whose range fits a float's mantissa, or FP32 into FP64. DOUBLE into FP32 or
 * INTEGER into FP32 would round, so they are refused (the user casts in the query if rounding is meant).
 */
export function widensLosslessly(from: DataType, to: DataType): boolean {
  if (from === to) return true;
  const a = INTS[from];
  const b = INTS[to];
  if (a && b) {
    if (a.signed === b.signed) return b.bits >= a.bits;
    return !a.signed && b.signed && b.bits > a.bits;
  }
  const mantissa = FLOAT_MANTISSA[to];
  if (a && mantissa) return (a.signed ? a.bits - 1 : a.bits) <= mantissa;
  return from === 'FP32' && to === 'FP64';
}

/** Walks nested fixed-size ARRAY types: the leaf type and the sizes on the way down. */
export function arrayDims(type: DuckDBType): { leaf: DuckDBType; dims: number[] } {
  const dims: number[] = [];
  let t: DuckDBType = type;
  while (t.typeId === DuckDBTypeId.ARRAY) {
    const arr = t as DuckDBType & { valueType: DuckDBType; length: number };
    dims.push(arr.length);
    t = arr.valueType;
  }
  return { leaf: t, dims };
}

export function isNumeric(dtype: DataType | undefined): boolean {
  return dtype !== undefined && dtype !== 'BOOL' && dtype !== 'BYTES';
}

/** A SQL identifier, quoted. */
export function quoteIdent(name: string): string {
  return `"${name.replaceAll('"', '""')}"`;
}

/** A SQL string literal. */
export function quoteString(value: string): string {
  return `'${value.replaceAll("'", "''")}'`;
}
