import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { type DuckDBConnection, DuckDBInstance } from '@duckdb/node-api';
import { tableFromArrays } from 'apache-arrow';
import { type DataType, type Tensor, type TensorSpec, typedArrayFor } from '@pyml/contract';
import { columnsToTensors, tensorsToRecordBatch } from '@pyml/runtime/arrow-io';
import { ChunkBatcher, type InputBatch, NullInputError } from '../../packages/batch/src/chunk-batcher.ts';
import { SQL_TYPE } from '../../packages/batch/src/duckdb-types.ts';
import { RowWriter } from '../../packages/batch/src/row-writer.ts';
import { TableInserter } from '../../packages/batch/src/table-inserter.ts';
import { copyPartStatement } from '../../packages/batch/src/output-target.ts';
import { mkdtemp, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

/**
 * The driver's hot path, in process against real DuckDB: query chunks read as typed-array views into model-input
 * batches (ChunkBatcher), output rows pulled by DuckDB through a table function into a table (RowWriter +
 * TableInserter), and Arrow columns read as tensors without a copy where they can be (arrow-tensors).
 */

let instance: DuckDBInstance;
let connection: DuckDBConnection;

test.before(async () => {
  instance = await DuckDBInstance.create(':memory:');
  connection = await instance.connect();
});

test.after(() => {
  connection.closeSync();
  instance.closeSync();
});

/** Every batch of `sql`'s rows (columns from `firstColumn` on are the inputs). */
async function batchesOf(sql: string, specs: TensorSpec[], batchRows: number, firstColumn = 0): Promise<InputBatch[]> {
  const stream = await connection.stream(sql);
  const batcher = new ChunkBatcher(specs, batchRows, firstColumn);
  const out: InputBatch[] = [];
  for (;;) {
    const chunk = await stream.fetchChunk();
    if (!chunk || chunk.rowCount === 0) break;
    out.push(...batcher.add(chunk));
  }
  const last = batcher.flush();
  if (last) out.push(last);
  return out;
}

const NUMERIC: Exclude<DataType, 'FP16' | 'BYTES'>[] = ['BOOL', 'INT8', 'INT16', 'INT32', 'INT64', 'UINT8', 'UINT16', 'UINT32', 'UINT64', 'FP32', 'FP64'];

/** The value row r holds in the test queries, within every type's range. */
const valueAt = (dtype: DataType, r: number): number => (dtype === 'BOOL' ? r % 2 : dtype.startsWith('FP') ? (r % 97) / 4 : r % 100);

test('ChunkBatcher: every numeric DuckDB type read as typed arrays, across chunk and batch boundaries', async () => {
  const rows = 5000;
  for (const dtype of NUMERIC) {
    const spec: TensorSpec = { name: 'x', dtype, shape: [-1] };
    const expr = dtype === 'BOOL' ? '(range % 2 = 1)' : dtype.startsWith('FP') ? `((range % 97) / 4)::${SQL_TYPE[dtype]}` : `(range % 100)::${SQL_TYPE[dtype]}`;
    const batches = await batchesOf(`SELECT ${expr} AS x FROM range(${rows})`, [spec], 3000);
    assert.equal(batches.map((b) => [b.index, b.firstRow, b.rows]), [[0, 0, 3000], [1, 3000, 2000]], dtype);
    const Ctor = typedArrayFor(dtype)!;
    for (const b of batches) {
      const data = b.tensors.x.data as InstanceType<typeof Ctor>;
      assert.ok(data instanceof Ctor, `${dtype}: ${data.constructor.name}`);
      assert.equal(b.tensors.x.shape, [b.rows], dtype);
      for (let i = 0; i < b.rows; i++) {
        const want = valueAt(dtype, b.firstRow + i);
        const got = data[i];
        if ((typeof got === 'bigint' ? Number(got) : got) !== want) assert.unreachable(`${dtype} row ${b.firstRow + i}: ${got} != ${want}`);
      }
    }
  }
});

test('ChunkBatcher: a fixed-size ARRAY column is one flat run per row, after the caller\'s columns', async () => {
  const spec: TensorSpec = { name: 'v', dtype: 'FP32', shape: [-1, 3] };
  const batches = await batchesOf('SELECT range AS id, [range, range + 0.5, -range]::FLOAT[3] AS v FROM range(4100)', [spec], 4096, 1);
  assert.equal(batches.map((b) => b.rows), [4096, 4]);
  const last = batches[1].tensors.v;
  assert.equal(last.shape, [4, 3]);
  assert.equal([...(last.data as Float32Array)], [4096, 4096.5, -4096, 4097, 4097.5, -4097, 4098, 4098.5, -4098, 4099, 4099.5, -4099]);
});

test('ChunkBatcher: a NULL, in a row or inside its ARRAY, names the input and the query row', async () => {
  for (const dtype of NUMERIC) {
    const spec: TensorSpec = { name: 'x', dtype, shape: [-1] };
    const expr = `CASE WHEN range = 2500 THEN NULL ELSE ${dtype === 'BOOL' ? 'true' : `1::${SQL_TYPE[dtype]}`} END`;
    try {
      await batchesOf(`SELECT ${expr} AS x FROM range(3000)`, [spec], 1024);
      assert.unreachable(`${dtype}: a NULL went through`);
    } catch (error) {
      assert.instance(error, NullInputError, dtype);
      assert.is((error as NullInputError).column, 'x');
      assert.is((error as NullInputError).row, 2500, dtype);
      assert.match((error as Error).message, /input 'x' is NULL at row 2500/);
    }
  }
  try {
    await batchesOf('SELECT [1, CASE WHEN range = 4097 THEN NULL ELSE 2 END, 3]::FLOAT[3] AS v FROM range(5000)', [{ name: 'v', dtype: 'FP32', shape: [-1, 3] }], 2048);
    assert.unreachable('a NULL inside an ARRAY went through');
  } catch (error) {
    assert.instance(error, NullInputError);
    assert.is((error as NullInputError).row, 4097);
  }
});

const OUTPUTS: TensorSpec[] = [{ name: 'p', dtype: 'FP32', shape: [-1, 3] }, { name: 'label', dtype: 'INT64', shape: [-1] }];

test('RowWriter + TableInserter: --keep columns (NULLs kept where they are, and only there) beside the outputs, in order', async () => {
  const rows = 9000;
  // Chunk 0 (rows 0-2047) has NULL ids and names; later chunks have none, so a NULL must not stay behind in the
  // reused output chunk. Predictions come in batches of 3000 rows, which do not line up with the 2048-row chunks.
  // The query streams on a connection of its own, as in runBatch: a statement run on a connection ends its stream.
  const reader = await instance.connect();
  const stream = await reader.stream(`SELECT CASE WHEN range % 7 = 0 AND range < 2048 THEN NULL ELSE range END AS id,
      CASE WHEN range % 5 = 0 AND range < 2048 THEN NULL ELSE 'n' || range END AS name, range / 2 AS half FROM range(${rows})`);
  const writer = new RowWriter(stream.columnTypes(), OUTPUTS);
  await connection.run('CREATE OR REPLACE TABLE out (id BIGINT, name VARCHAR, half DOUBLE, p FLOAT[3], label BIGINT)');
  const inserter = new TableInserter(connection, writer, 'out', 3000);
  let read = 0;
  let predicted = 0;
  const predict = (n: number) => {
    const p = new Float32Array(n * 3);
    const label = new BigInt64Array(n);
    for (let i = 0; i < n; i++) {
      p.set([predicted + i, 0.5, -1], i * 3);
      label[i] = BigInt((predicted + i) % 3);
    }
    writer.addPredictions({ p: { dtype: 'FP32', shape: [n, 3], data: p }, label: { dtype: 'INT64', shape: [n], data: label } }, n);
    predicted += n;
    inserter.kick();
  };
  for (;;) {
    const chunk = await stream.fetchChunk();
    if (!chunk || chunk.rowCount === 0) break;
    writer.addChunk(chunk);
    read += chunk.rowCount;
    while (read - predicted >= 3000) predict(3000);
    await inserter.settle();
  }
  predict(read - predicted);
  await inserter.flush();
  reader.closeSync();
  assert.is(read, rows);
  assert.is(writer.written, rows);
  assert.is(writer.ready, 0);
  const check = await connection.runAndReadAll(`SELECT count(*)::INT AS n,
      count(*) FILTER (WHERE (id IS NULL) != (rn % 7 = 0 AND rn < 2048))::INT AS bad_id,
      count(*) FILTER (WHERE (name IS NULL) != (rn % 5 = 0 AND rn < 2048) OR (name IS NOT NULL AND name != 'n' || rn))::INT AS bad_name,
      count(*) FILTER (WHERE half != rn / 2 OR p[1] != rn OR p[2] != 0.5 OR p[3] != -1 OR label != rn % 3)::INT AS bad_values
    FROM (SELECT *, row_number() OVER () - 1 AS rn FROM out)`);
  assert.equal(check.getRowObjectsJS()[0], { n: rows, bad_id: 0, bad_name: 0, bad_values: 0 });
});

test('arrow-tensors: one chunk of fixed-width values is read as a view; slices, nulls and several chunks still work', () => {
  const spec: TensorSpec = { name: 'v', dtype: 'FP32', shape: [-1, 2] };
  const data = Float32Array.from({ length: 20 }, (_, i) => i);
  const batch = tensorsToRecordBatch([spec], { v: { dtype: 'FP32', shape: [10, 2], data } });
  const whole = columnsToTensors([spec], batch, 'input').v;
  assert.is((whole.data as Float32Array).buffer, data.buffer, 'a view of the column, not a copy');
  assert.equal(whole.shape, [10, 2]);
  const sliced = columnsToTensors([spec], batch.slice(3, 6), 'input').v;
  assert.equal(sliced.shape, [3, 2]);
  assert.equal([...(sliced.data as Float32Array)], [6, 7, 8, 9, 10, 11]);
  const scalar: TensorSpec = { name: 'x', dtype: 'INT64', shape: [-1] };
  const table = tableFromArrays({ x: BigInt64Array.from([1n, 2n]) }).concat(tableFromArrays({ x: BigInt64Array.from([3n]) }));
  const joined = columnsToTensors([scalar], table, 'input').x as Tensor<'INT64'>;
  assert.equal([...joined.data], [1n, 2n, 3n]);
  const withNull = tableFromArrays({ x: [1, null, 3] as unknown as Float64Array });
  assert.throws(() => columnsToTensors([{ name: 'x', dtype: 'FP64', shape: [-1] }], withNull, 'input'), /null/);
});


test('TableInserter into a Parquet dataset: one file per statement, named so that name order is row order; partitioned too; no rows still makes a file', async () => {
  const rows = 10000;
  const OUT: TensorSpec[] = [{ name: 'p', dtype: 'FP32', shape: [-1, 2] }];
  for (const partitionBy of [[], ['ds']]) {
    const dir = await mkdtemp(join(tmpdir(), 'pyml-row-io-parts-'));
    try {
      const reader = await instance.connect();
      const stream = await reader.stream(`SELECT range AS id, 'd' || (range % 3) AS ds FROM range(${rows})`);
      const writer = new RowWriter(stream.columnTypes(), OUT);
      const into = (select: string, index: number) => copyPartStatement(`SELECT c0 AS id, c1 AS ds, c2 AS p FROM (${select})`, dir, partitionBy, index);
      // Statements of at least 2500 rows: several files, each ending on a chunk boundary, not on a batch's.
      const inserter = new TableInserter(connection, writer, into, 2500);
      let read = 0;
      let predicted = 0;
      const predict = (n: number) => {
        const p = new Float32Array(n * 2);
        for (let i = 0; i < n; i++) p.set([predicted + i, -(predicted + i)], i * 2);
        writer.addPredictions({ p: { dtype: 'FP32', shape: [n, 2], data: p } }, n);
        predicted += n;
        inserter.kick();
      };
      for (;;) {
        const chunk = await stream.fetchChunk();
        if (!chunk || chunk.rowCount === 0) break;
        writer.addChunk(chunk);
        read += chunk.rowCount;
        while (read - predicted >= 1500) predict(1500);
        await inserter.settle();
      }
      predict(read - predicted);
      await inserter.flush(true);
      reader.closeSync();
      assert.ok(inserter.statements >= 3, `${inserter.statements} statements`);
      const files = (await readdir(dir, { recursive: true })).filter((f) => f.endsWith('.parquet')).sort();
      assert.ok(files.length >= inserter.statements, files.join(', '));
      if (partitionBy.length) assert.ok(files.every((f) => /^ds=d[012]\/data_\d{6}_0\.parquet$/.test(f)), files.join(', '));
      else assert.equal(files, Array.from({ length: inserter.statements }, (_, i) => `data_${String(i).padStart(6, '0')}.parquet`));
      // Read back file by file in name order: every row once, in order (within each partition when partitioned).
      const glob = join(dir, partitionBy.length ? '*/*.parquet' : '*.parquet');
      const check = await connection.runAndReadAll(`SELECT count(*)::INT AS n, count(DISTINCT id)::INT AS ids,
          count(*) FILTER (WHERE p[1] != id OR p[2] != -id OR ds != 'd' || (id % 3))::INT AS bad,
          count(*) FILTER (WHERE id < previous)::INT AS out_of_order
        FROM (SELECT *, lag(id) OVER (PARTITION BY ${partitionBy.length ? 'ds' : '1'} ORDER BY filename, file_row_number) AS previous
              FROM read_parquet('${glob}', filename = true, file_row_number = true, hive_partitioning = ${partitionBy.length > 0}))`);
      assert.equal(check.getRowObjectsJS()[0], { n: rows, ids: rows, bad: 0, out_of_order: 0 });
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  }
  // No rows at all: flush(true) still writes one (empty) file with the columns.
  const dir = await mkdtemp(join(tmpdir(), 'pyml-row-io-empty-'));
  try {
    const reader = await instance.connect();
    const stream = await reader.stream('SELECT range AS id FROM range(0)');
    const writer = new RowWriter(stream.columnTypes(), OUT);
    const inserter = new TableInserter(connection, writer, (select, index) => copyPartStatement(`SELECT c0 AS id, c1 AS p FROM (${select})`, dir, [], index), 2500);
    assert.is(await stream.fetchChunk().then((c) => c?.rowCount ?? 0), 0);
    await inserter.flush(true);
    reader.closeSync();
    assert.equal(await readdir(dir), ['data_000000.parquet']);
    const columns = await connection.runAndReadAll(`SELECT column_name, column_type FROM (DESCRIBE SELECT * FROM read_parquet('${join(dir, '*.parquet')}'))`);
    // Parquet has no fixed-size lists: FLOAT[2] reads back as FLOAT[], as from any dataset pyml batch writes.
    assert.equal(columns.getRows(), [['id', 'BIGINT'], ['p', 'FLOAT[]']]);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

test.run();
