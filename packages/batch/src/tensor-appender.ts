import { type DuckDBAppender, DuckDBDataChunk, type DuckDBType } from '@duckdb/node-api';
import duckdb from '@duckdb/node-bindings';
import { type Tensor, type Tensors, type TensorSpec, bytesPerElement, elementCount } from '@pyml/contract';
import { duckdbTypeFor } from './duckdb-types.ts';

/**
 * Appends output tensors to a DuckDB table whose columns are the outputs in signature order: a [-1] tensor is a
 * plain column, a [-1, K] one a fixed-size ARRAY column (`FLOAT[K]`). Values are copied into DuckDB's vectors in
 * bulk, one data chunk (DuckDB's vector size, 2048 rows) at a time.
 */
export class TensorAppender {
  private readonly types: DuckDBType[];
  private readonly chunkRows = duckdb.vector_size();
  private readonly chunk: DuckDBDataChunk;

  constructor(private readonly appender: DuckDBAppender, private readonly specs: readonly TensorSpec[]) {
    this.types = specs.map((s) => duckdbTypeFor(s.dtype, s.shape.slice(1)));
    this.chunk = DuckDBDataChunk.create(this.types, this.chunkRows);
  }

  static columnTypes(specs: readonly TensorSpec[]): DuckDBType[] {
    return specs.map((s) => duckdbTypeFor(s.dtype, s.shape.slice(1)));
  }

  append(tensors: Tensors, rows: number): void {
    for (let from = 0; from < rows; from += this.chunkRows) {
      const take = Math.min(this.chunkRows, rows - from);
      this.chunk.reset();
      this.chunk.rowCount = take;
      this.specs.forEach((spec, i) => this.fill(i, spec, tensors[spec.name], from, take));
      this.appender.appendDataChunk(this.chunk);
    }
  }

  private fill(column: number, spec: TensorSpec, tensor: Tensor, from: number, take: number): void {
    const rowDims = spec.shape.slice(1);
    const perRow = elementCount(rowDims);
    let vector = duckdb.data_chunk_get_vector(this.chunk.chunk, column);
    for (let level = 0; level < rowDims.length; level++) vector = duckdb.array_vector_get_child(vector);
    const start = from * perRow;
    const n = take * perRow;
    if (spec.dtype === 'BYTES') {
      const strings = tensor.data as string[];
      for (let j = 0; j < n; j++) duckdb.vector_assign_string_element(vector, j, strings[start + j]);
      return;
    }
    const data = tensor.data as Exclude<Tensor['data'], string[]>;
    const bpe = bytesPerElement(spec.dtype);
    duckdb.copy_data_to_vector(vector, 0, data.buffer as ArrayBuffer, data.byteOffset + start * bpe, n * bpe);
  }
}
