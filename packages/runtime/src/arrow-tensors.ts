import {
  type Data, type DataType as ArrowType, type Vector, Bool, Field, FixedSizeList, Float16, Float32, Float64,
  Int8, Int16, Int32, Int64, RecordBatch, Schema, Struct, Table, Type, Uint8, Uint16, Uint32, Uint64, Utf8,
  makeData,
} from 'apache-arrow';
import { type DataType, type Tensor, type Tensors, type TensorSpec, elementCount, typedArrayFor } from '@pyml/contract';
import { InvalidInputError, ModelError } from './errors.ts';
import { formatShape } from './validate.ts';

/**
 * Arrow columns ↔ tensors, one column per tensor, one row per entry of dimension 0. A tensor of shape [N] is a
 * plain column; [N, K] a FixedSizeList<K> column; [N, K, L] a FixedSizeList<K> of FixedSizeList<L>, and so on.
 * Dataframe models use the same mapping with 1-D tensors only.
 */

export function arrowTypeFor(dtype: DataType): ArrowType {
  switch (dtype) {
    case 'BOOL': return new Bool();
    case 'INT8': return new Int8();
    case 'INT16': return new Int16();
    case 'INT32': return new Int32();
    case 'INT64': return new Int64();
    case 'UINT8': return new Uint8();
    case 'UINT16': return new Uint16();
    case 'UINT32': return new Uint32();
    case 'UINT64': return new Uint64();
    case 'FP16': return new Float16();
    case 'FP32': return new Float32();
    case 'FP64': return new Float64();
    case 'BYTES': return new Utf8();
  }
}

/** The Arrow type of a column holding `spec` (its dims after the first become nested FixedSizeLists). */
export function columnTypeFor(dtype: DataType, rowDims: readonly number[]): ArrowType {
  let type: ArrowType = arrowTypeFor(dtype);
  for (let i = rowDims.length - 1; i >= 0; i--) type = new FixedSizeList(rowDims[i], new Field('item', type, false));
  return type;
}

/** The tensor dtype an Arrow leaf type carries, if any. */
function dtypeOfLeaf(type: ArrowType): DataType | undefined {
  switch (type.typeId) {
    case Type.Bool: return 'BOOL';
    case Type.Utf8: case Type.LargeUtf8: return 'BYTES';
    // Dictionary-encoded columns (what tableFromArrays makes of strings) are read as their values.
    case Type.Dictionary: return dtypeOfLeaf((type as unknown as { dictionary: ArrowType }).dictionary);
    case Type.Int: {
      const { bitWidth, isSigned } = type as unknown as { bitWidth: number; isSigned: boolean };
      return `${isSigned ? 'INT' : 'UINT'}${bitWidth}` as DataType;
    }
    case Type.Float: {
      const { precision } = type as unknown as { precision: number };
      return (['FP16', 'FP32', 'FP64'] as const)[precision];
    }
    default: return undefined;
  }
}

/** Reads one column into a tensor of `spec`: checks the Arrow type, the list sizes and the absence of nulls. */
export function columnToTensor(spec: TensorSpec, column: Vector, role: 'input' | 'output' = 'input'): Tensor {
  const fail = (why: string) => role === 'input'
    ? new InvalidInputError(`input column '${spec.name}': ${why}`, spec.name)
    : new ModelError(`model output column '${spec.name}': ${why}`, { tensor: spec.name });
  // Walk the nested list types down to the leaf, collecting the per-row dims.
  const rowDims: number[] = [];
  let type: ArrowType = column.type;
  while (type.typeId === Type.FixedSizeList) {
    const fsl = type as FixedSizeList;
    rowDims.push(fsl.listSize);
    type = fsl.children[0].type;
  }
  const leaf = dtypeOfLeaf(type);
  if (leaf !== spec.dtype || rowDims.length !== spec.shape.length - 1) {
    throw fail(`expected ${describeColumnType(spec)} for ${spec.dtype} ${formatShape(spec.shape)}, got ${String(column.type)}`);
  }
  for (let i = 0; i < rowDims.length; i++) {
    const want = spec.shape[i + 1];
    if (want !== -1 && rowDims[i] !== want) {
      throw fail(`expected list size ${want} at dimension ${i + 1} of ${formatShape(spec.shape)}, got ${rowDims[i]}`);
    }
  }
  const rows = column.length;
  const shape = [rows, ...rowDims];
  const n = elementCount(shape);
  const Ctor = typedArrayFor(spec.dtype);
  // One chunk of fixed-width values without nulls is already a tensor's flat data: a view of it, no copy.
  const view = Ctor && column.data.length === 1 ? valuesView(column.data[0], 0, rows, Ctor) : undefined;
  if (view && view.length === n) return { dtype: spec.dtype, shape, data: view } as Tensor;
  const out: Tensor['data'] = Ctor ? new Ctor(n) : new Array<string>(n);
  let written = 0;
  for (const chunk of column.data) written = copyElements(chunk, 0, chunk.length, out, written, fail);
  return { dtype: spec.dtype, shape, data: out } as Tensor;
}

/** The expected column type as Arrow prints types (`FixedSizeList[4]<Float32>`), `any` for a free size. */
function describeColumnType(spec: TensorSpec): string {
  let text = String(arrowTypeFor(spec.dtype));
  for (let i = spec.shape.length - 1; i >= 1; i--) text = `FixedSizeList[${spec.shape[i] === -1 ? 'any' : spec.shape[i]}]<${text}>`;
  return text;
}

/**
 * Logical elements [i0, i0+n) of `data` (flattening nested lists) as a view of its values buffer, when they are one
 * run of fixed-width values of the tensor's typed array without nulls; otherwise undefined (the caller copies).
 */
function valuesView(data: Data, i0: number, n: number, Ctor: NonNullable<ReturnType<typeof typedArrayFor>>): Exclude<Tensor['data'], string[]> | undefined {
  if (data.nullCount > 0) return undefined;
  if (data.typeId === Type.FixedSizeList) {
    const size = (data.type as FixedSizeList).listSize;
    return valuesView(data.children[0], i0 * size, n * size, Ctor);
  }
  if (data.typeId !== Type.Int && data.typeId !== Type.Float) return undefined;
  const values = data.values as unknown;
  if (!(values instanceof Ctor) || values.length < i0 + n) return undefined;
  return values.subarray(i0, i0 + n) as Exclude<Tensor['data'], string[]>;
}

/** Copies logical elements [i0, i0+n) of `data` (flattening nested lists) into `out` at `at`; returns the new end. */
function copyElements(data: Data, i0: number, n: number, out: Tensor['data'], at: number, fail: (why: string) => Error): number {
  if (data.nullCount > 0) throw fail(`has ${data.nullCount} null value(s); tensors cannot hold nulls`);
  switch (data.typeId) {
    case Type.FixedSizeList: {
      const size = (data.type as FixedSizeList).listSize;
      // Arrow JS slices FixedSizeList children with the parent, so child element indexes are relative.
      return copyElements(data.children[0], i0 * size, n * size, out, at, fail);
    }
    case Type.Bool: {
      // Bool bits are not sliced: the data offset still applies.
      const bits = data.values as Uint8Array;
      const o = out as Uint8Array;
      for (let j = 0; j < n; j++) {
        const idx = data.offset + i0 + j;
        o[at + j] = (bits[idx >> 3] >> (idx & 7)) & 1;
      }
      return at + n;
    }
    case Type.Dictionary: {
      const dictionary = data.dictionary!;
      const values: Tensor['data'] = typedArrayFor(dtypeOfLeaf(dictionary.type)!) ? new (typedArrayFor(dtypeOfLeaf(dictionary.type)!)!)(dictionary.length) : new Array<string>(dictionary.length);
      let end = 0;
      for (const chunk of dictionary.data) end = copyElements(chunk, 0, chunk.length, values, end, fail);
      const indices = data.values as Int32Array;
      const o = out as unknown as unknown[];
      const v = values as unknown as unknown[];
      for (let j = 0; j < n; j++) o[at + j] = v[Number(indices[i0 + j])];
      return at + n;
    }
    case Type.Utf8: case Type.LargeUtf8: {
      const offsets = data.valueOffsets as Int32Array | BigInt64Array;
      const bytes = data.values as Uint8Array;
      const view = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
      const o = out as string[];
      for (let j = 0; j < n; j++) o[at + j] = view.toString('utf8', Number(offsets[i0 + j]), Number(offsets[i0 + j + 1]));
      return at + n;
    }
    default: {
      // Fixed-width primitives: values are already sliced to the data's offset.
      const values = data.values as Exclude<Tensor['data'], string[]>;
      (out as unknown as { set(a: ArrayLike<unknown>, o: number): void }).set(values.subarray(i0, i0 + n) as ArrayLike<unknown>, at);
      return at + n;
    }
  }
}

/** Builds the Arrow data of one column from a tensor whose dim 0 is the row count. */
export function tensorToColumn(t: Tensor): Data {
  if (t.shape.length === 0) throw new Error('a scalar tensor cannot be a column; give it a row dimension');
  const leafType = arrowTypeFor(t.dtype);
  const n = t.data.length;
  let data: Data;
  if (t.dtype === 'BYTES') data = utf8Data(t.data as string[]);
  else if (t.dtype === 'BOOL') {
    const src = t.data as Uint8Array;
    const bits = new Uint8Array(((n + 63) & ~63) >> 3);
    for (let i = 0; i < n; i++) if (src[i]) bits[i >> 3] |= 1 << (i & 7);
    data = makeData({ type: leafType as Bool, length: n, nullCount: 0, data: bits });
  } else data = makeData({ type: leafType as Float32, length: n, nullCount: 0, data: t.data as Float32Array });
  // Wrap from the innermost dim outwards: [N, K, L] → FSL<K>(FSL<L>(leaf)).
  let length = n;
  for (let i = t.shape.length - 1; i >= 1; i--) {
    const size = t.shape[i];
    length = size === 0 ? t.shape.slice(0, i).reduce((a, b) => a * b, 1) : length / size;
    const type: FixedSizeList = new FixedSizeList(size, new Field('item', data.type, false));
    data = makeData({ type, length, nullCount: 0, child: data as Data<FixedSizeList['valueType']> });
  }
  return data;
}

function utf8Data(strings: string[]): Data {
  const encoded = strings.map((s) => Buffer.from(s, 'utf8'));
  const valueOffsets = new Int32Array(strings.length + 1);
  for (let i = 0; i < encoded.length; i++) valueOffsets[i + 1] = valueOffsets[i] + encoded[i].length;
  const bytes = new Uint8Array(valueOffsets[strings.length]);
  for (let i = 0; i < encoded.length; i++) bytes.set(encoded[i], valueOffsets[i]);
  return makeData({ type: new Utf8(), length: strings.length, nullCount: 0, valueOffsets, data: bytes });
}

/** One record batch holding `tensors` as columns, in the order of `specs`. */
export function tensorsToRecordBatch(specs: readonly TensorSpec[], tensors: Tensors): RecordBatch {
  const rows = specs.length ? tensors[specs[0].name].shape[0] : 0;
  const columns = specs.map((s) => tensorToColumn(tensors[s.name]));
  const fields = specs.map((s, i) => new Field(s.name, columns[i].type, false));
  const struct = makeData({ type: new Struct(fields), length: rows, nullCount: 0, children: columns });
  return new RecordBatch(new Schema(fields), struct);
}

/** Reads the columns named by `specs` from a table or batch; unknown and missing columns are named. */
export function columnsToTensors(specs: readonly TensorSpec[], source: Table | RecordBatch, role: 'input' | 'output'): Tensors {
  const names = source.schema.fields.map((f) => f.name);
  for (const name of names) {
    if (!specs.some((s) => s.name === name)) {
      const msg = `unknown ${role} column '${name}'; the model ${role === 'input' ? 'takes' : 'declares'} ${specs.map((s) => `'${s.name}'`).join(', ')}`;
      throw role === 'input' ? new InvalidInputError(msg, name) : new ModelError(msg, { tensor: name });
    }
  }
  const out: Tensors = {};
  for (const spec of specs) {
    const column = source.getChild(spec.name);
    if (!column) {
      const msg = `missing ${role} column '${spec.name}' (${describeColumnType(spec)})`;
      throw role === 'input' ? new InvalidInputError(msg, spec.name) : new ModelError(msg, { tensor: spec.name });
    }
    out[spec.name] = columnToTensor(spec, column, role);
  }
  return out;
}

/** A table of 1-D tensors, one column each, for dataframe models. */
export function tensorsToTable(specs: readonly TensorSpec[], tensors: Tensors): Table {
  return new Table(tensorsToRecordBatch(specs, tensors));
}
