import { type DuckDBDataChunk, type DuckDBDecimalType, type DuckDBType, DuckDBTypeId, DuckDBVector } from '@duckdb/node-api';
import duckdb from '@duckdb/node-bindings';
import { type Tensor, type Tensors, type TensorSpec, bytesPerElement, elementCount } from '@pyml/contract';
import { duckdbTypeFor } from './duckdb-types.ts';

/** Bytes per value of the DuckDB types whose vectors are one flat run of fixed-width values (no children, no heap). */
const FIXED_WIDTH: Partial<Record<DuckDBTypeId, number>> = {
  [DuckDBTypeId.BOOLEAN]: 1, [DuckDBTypeId.TINYINT]: 1, [DuckDBTypeId.SMALLINT]: 2, [DuckDBTypeId.INTEGER]: 4,
  [DuckDBTypeId.BIGINT]: 8, [DuckDBTypeId.UTINYINT]: 1, [DuckDBTypeId.USMALLINT]: 2, [DuckDBTypeId.UINTEGER]: 4,
  [DuckDBTypeId.UBIGINT]: 8, [DuckDBTypeId.FLOAT]: 4, [DuckDBTypeId.DOUBLE]: 8, [DuckDBTypeId.DATE]: 4,
  [DuckDBTypeId.TIME]: 8, [DuckDBTypeId.TIME_TZ]: 8, [DuckDBTypeId.TIMESTAMP]: 8, [DuckDBTypeId.TIMESTAMP_S]: 8,
  [DuckDBTypeId.TIMESTAMP_MS]: 8, [DuckDBTypeId.TIMESTAMP_NS]: 8, [DuckDBTypeId.TIMESTAMP_TZ]: 8,
  [DuckDBTypeId.INTERVAL]: 16, [DuckDBTypeId.HUGEINT]: 16, [DuckDBTypeId.UHUGEINT]: 16, [DuckDBTypeId.UUID]: 16,
};

function fixedWidth(type: DuckDBType): number | undefined {
  if (type.typeId === DuckDBTypeId.DECIMAL) {
    const { width } = type as DuckDBDecimalType;
    return width <= 4 ? 2 : width <= 9 ? 4 : width <= 18 ? 8 : 16;
  }
  return FIXED_WIDTH[type.typeId];
}

interface Pending {
  rows: number;
  /** The query's chunk, held for its --keep columns until the predictions for its rows are back. */
  chunk?: DuckDBDataChunk;
}

interface Predictions {
  rows: number;
  tensors: Tensors;
}

/**
 * Makes the output rows: for each chunk of the query, its --keep columns (copied vector to vector, in bulk for
 * fixed-width types) beside the model outputs for the same rows, as one DuckDB data chunk. Chunks wait here until the
 * predictions covering them have arrived (predictions arrive in input order); then `fill` hands them out, in order, to
 * whoever writes the table (TableInserter: DuckDB pulls them through a table function).
 *
 * The target table's columns are the --keep columns (the query chunk's first `keepTypes.length` columns), then the
 * outputs in signature order: a [-1] tensor is a plain column, a [-1, K] one a fixed-size ARRAY column.
 */
export class RowWriter {
  private readonly chunks: Pending[] = [];
  private readonly predictions: Predictions[] = [];
  /** Rows of predictions[0] already written. */
  private used = 0;
  /** Rows of predictions not yet written. */
  private predicted = 0;
  /** Leading entries of `chunks` whose predictions are all in. */
  private complete = 0;
  private readonly keepWidths: (number | undefined)[];
  /** The output columns' types: --keep columns, then one per model output. */
  readonly types: DuckDBType[];
  /** Rows handed out by `fill`. */
  written = 0;
  /** Rows whose predictions are in and that `fill` has not handed out yet. */
  ready = 0;

  constructor(private readonly keepTypes: readonly DuckDBType[], private readonly outputs: readonly TensorSpec[]) {
    this.types = [...keepTypes, ...outputs.map((s) => duckdbTypeFor(s.dtype, s.shape.slice(1)))];
    this.keepWidths = keepTypes.map(fixedWidth);
  }

  /** A query chunk (in order); its rows can be filled once their predictions are in. */
  addChunk(chunk: DuckDBDataChunk): void {
    this.chunks.push({ rows: chunk.rowCount, ...(this.keepTypes.length ? { chunk } : {}) });
  }

  /** The predictions for the next `rows` rows, in order. */
  addPredictions(tensors: Tensors, rows: number): void {
    this.predictions.push({ rows, tensors });
    this.predicted += rows;
    let available = this.predicted - this.used - this.ready;
    while (this.complete < this.chunks.length && this.chunks[this.complete].rows <= available) {
      available -= this.chunks[this.complete].rows;
      this.ready += this.chunks[this.complete].rows;
      this.complete++;
    }
  }

  /** Writes the next complete chunk's rows into `out` (a chunk of `types`); returns its row count, 0 when none is ready. */
  fill(out: DuckDBDataChunk): number {
    if (this.complete === 0) {
      out.rowCount = 0;
      return 0;
    }
    const pending = this.chunks.shift()!;
    this.complete--;
    this.ready -= pending.rows;
    this.write(pending, out);
    return pending.rows;
  }

  private write({ rows, chunk }: Pending, out: DuckDBDataChunk): void {
    out.rowCount = rows;
    for (let k = 0; k < this.keepTypes.length; k++) this.copyKeep(k, chunk!, out, rows);
    // The outputs for these rows may span two prediction batches.
    let at = 0;
    while (at < rows) {
      const head = this.predictions[0];
      const take = Math.min(rows - at, head.rows - this.used);
      this.outputs.forEach((spec, i) => this.fillOutput(out, this.keepTypes.length + i, spec, head.tensors[spec.name], this.used, at, take));
      at += take;
      this.used += take;
      if (this.used === head.rows) {
        this.predictions.shift();
        this.predicted -= head.rows;
        this.used = 0;
      }
    }
    this.written += rows;
  }

  private copyKeep(k: number, chunk: DuckDBDataChunk, out: DuckDBDataChunk, rows: number): void {
    const from = duckdb.data_chunk_get_vector(chunk.chunk, k);
    const to = duckdb.data_chunk_get_vector(out.chunk, k);
    const width = this.keepWidths[k];
    if (width === undefined) {
      // Strings, nested and other types: value by value through the typed vector readers and writers.
      const source = DuckDBVector.create(from, rows, this.keepTypes[k]);
      const target = DuckDBVector.create(to, rows, this.keepTypes[k]);
      for (let i = 0; i < rows; i++) target.setItem(i, source.getItem(i));
      target.flush();
      return;
    }
    const data = duckdb.vector_get_data(from, rows * width);
    duckdb.copy_data_to_vector(to, 0, data.buffer as ArrayBuffer, data.byteOffset, rows * width);
    const validityBytes = Math.ceil(rows / 64) * 8;
    const validity = duckdb.vector_get_validity(from, validityBytes);
    if (validity) {
      duckdb.vector_ensure_validity_writable(to);
      duckdb.copy_data_to_vector_validity(to, 0, validity.buffer as ArrayBuffer, validity.byteOffset, validityBytes);
    } else if (duckdb.vector_get_validity(to, validityBytes)) {
      // Should the chunk DuckDB hands over still carry an earlier chunk's NULLs (it resets it today), they must not stay.
      const allValid = new Uint8Array(validityBytes).fill(0xff);
      duckdb.copy_data_to_vector_validity(to, 0, allValid.buffer, 0, validityBytes);
    }
  }

  /** Rows [from, from + take) of an output tensor into rows [at, at + take) of column `column`. */
  private fillOutput(out: DuckDBDataChunk, column: number, spec: TensorSpec, tensor: Tensor, from: number, at: number, take: number): void {
    const rowDims = spec.shape.slice(1);
    const perRow = elementCount(rowDims);
    let vector = duckdb.data_chunk_get_vector(out.chunk, column);
    for (let level = 0; level < rowDims.length; level++) vector = duckdb.array_vector_get_child(vector);
    const start = from * perRow;
    const n = take * perRow;
    if (spec.dtype === 'BYTES') {
      const strings = tensor.data as string[];
      const base = at * perRow;
      for (let j = 0; j < n; j++) duckdb.vector_assign_string_element(vector, base + j, strings[start + j]);
      return;
    }
    const data = tensor.data as Exclude<Tensor['data'], string[]>;
    const bpe = bytesPerElement(spec.dtype);
    duckdb.copy_data_to_vector(vector, at * perRow * bpe, data.buffer as ArrayBuffer, data.byteOffset + start * bpe, n * bpe);
  }
}
