import { type DuckDBDataChunk, DuckDBVector } from '@duckdb/node-api';
import duckdb from '@duckdb/node-bindings';
import { type Tensor, type Tensors, type TensorSpec, bytesPerElement, elementCount, typedArrayFor } from '@pyml/contract';
import { duckdbTypeFor } from './duckdb-types.ts';

/** A NULL where a model input needs a value (tensors have no nulls). */
export class NullInputError extends Error {
  override name = 'NullInputError';
  constructor(readonly column: string, readonly row: number) {
    super(`input '${column}' is NULL at row ${row}; tensors cannot hold nulls (filter or COALESCE them in the query)`);
  }
}

/** Rows [firstRow, firstRow + rows) of the query as model-input tensors. */
export interface InputBatch {
  index: number;
  firstRow: number;
  rows: number;
  tensors: Tensors;
}

interface Column {
  spec: TensorSpec;
  /** Elements per row (product of the per-row dims). */
  perRow: number;
  bytes: number;
  data: Tensor['data'];
}

/**
 * Gathers DuckDB data chunks (about 2048 rows each) into model-input tensors of `batchRows` rows, copying fixed-width
 * values straight out of DuckDB's vectors (nested fixed-size ARRAYs are one flat run of values) and checking
 * validity masks for NULLs. The chunk's columns are the inputs, in the order of `specs`.
 */
export class ChunkBatcher {
  private columns: Column[] = [];
  /** Full batches' buffers handed back by `recycle`, to fill again (fewer large allocations, page faults and GCs). */
  private readonly spare: Tensor['data'][][] = [];
  private filled = 0;
  private firstRow = 0;
  private index = 0;

  /** `firstColumn`: where the inputs start in the chunk (columns before it are the caller's). */
  constructor(private readonly specs: readonly TensorSpec[], private readonly batchRows: number, private readonly firstColumn = 0) {
    this.reset();
  }

  private reset(): void {
    const spare = this.spare.pop();
    this.columns = this.specs.map((spec, i) => {
      const perRow = elementCount(spec.shape.slice(1));
      const Ctor = typedArrayFor(spec.dtype);
      const n = perRow * this.batchRows;
      return { spec, perRow, bytes: bytesPerElement(spec.dtype), data: spare?.[i] ?? (Ctor ? new Ctor(n) : new Array<string>(n)) };
    });
    this.filled = 0;
  }

  /**
   * Hands back a batch this batcher made once nothing reads its tensors any more (its rows went through the model):
   * later batches are filled into the same buffers. Partial batches and string tensors are left to the GC.
   */
  recycle(batch: InputBatch): void {
    if (batch.rows !== this.batchRows) return;
    const buffers = this.specs.map((spec) => batch.tensors[spec.name].data);
    if (buffers.some((b) => Array.isArray(b))) return;
    this.spare.push(buffers);
  }

  /** Adds a chunk; returns the batches it completed (usually none or one). */
  add(chunk: DuckDBDataChunk): InputBatch[] {
    const out: InputBatch[] = [];
    const rows = chunk.rowCount;
    this.checkChunk(chunk, this.firstRow + this.filled);
    let from = 0;
    while (from < rows) {
      const take = Math.min(rows - from, this.batchRows - this.filled);
      this.copy(chunk, from, take);
      this.filled += take;
      from += take;
      if (this.filled === this.batchRows) out.push(this.emit());
    }
    return out;
  }

  /** The last, partial batch, if any rows are left. */
  flush(): InputBatch | undefined {
    return this.filled > 0 ? this.emit() : undefined;
  }

  private emit(): InputBatch {
    const rows = this.filled;
    const tensors: Tensors = {};
    for (const c of this.columns) {
      const n = rows * c.perRow;
      const data = c.data.length === n ? c.data : Array.isArray(c.data) ? c.data.slice(0, n) : c.data.subarray(0, n);
      tensors[c.spec.name] = { dtype: c.spec.dtype, shape: [rows, ...c.spec.shape.slice(1)], data } as Tensor;
    }
    const batch: InputBatch = { index: this.index++, firstRow: this.firstRow, rows, tensors };
    this.firstRow += rows;
    this.reset();
    return batch;
  }

  private copy(chunk: DuckDBDataChunk, from: number, take: number): void {
    const rows = chunk.rowCount;
    this.columns.forEach((c, i) => {
      let vector = duckdb.data_chunk_get_vector(chunk.chunk, this.firstColumn + i);
      // Down through the fixed-size ARRAY levels: each level's child holds rows × size values, contiguous.
      let count = rows;
      for (const d of c.spec.shape.slice(1)) {
        vector = duckdb.array_vector_get_child(vector);
        count *= d;
      }
      const start = from * c.perRow;
      const n = take * c.perRow;
      const at = this.filled * c.perRow;
      if (c.spec.dtype === 'BYTES') {
        const strings = DuckDBVector.create(vector, count, duckdbTypeFor('BYTES', []));
        const out = c.data as string[];
        for (let j = 0; j < n; j++) out[at + j] = strings.getItem(start + j) as string;
      } else {
        const raw = duckdb.vector_get_data(vector, count * c.bytes);
        const target = c.data as Exclude<Tensor['data'], string[]>;
        new Uint8Array(target.buffer, target.byteOffset, target.byteLength).set(raw.subarray(start * c.bytes, (start + n) * c.bytes), at * c.bytes);
      }
    });
  }

  /** NULLs anywhere (a row, or a value inside a row's ARRAY) fail with the query row they are in. */
  private checkChunk(chunk: DuckDBDataChunk, baseRow: number): void {
    const rows = chunk.rowCount;
    this.columns.forEach((c, i) => {
      let vector = duckdb.data_chunk_get_vector(chunk.chunk, this.firstColumn + i);
      let count = rows;
      checkValid(vector, count, 1);
      for (const d of c.spec.shape.slice(1)) {
        vector = duckdb.array_vector_get_child(vector);
        count *= d;
        checkValid(vector, count, count / rows);
      }
      function checkValid(v: duckdb.Vector, n: number, perRow: number): void {
        const validity = duckdb.vector_get_validity(v, Math.ceil(n / 64) * 8);
        if (!validity) return;
        for (let j = 0; j < n; j++) {
          if (((validity[j >> 3] >> (j & 7)) & 1) === 0) throw new NullInputError(c.spec.name, baseRow + Math.floor(j / perRow));
        }
      }
    });
  }
}
