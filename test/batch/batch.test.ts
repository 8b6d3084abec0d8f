import { readdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { parseJson, pyml } from '../helpers/cli.ts';
import { tempDir } from '../helpers/project.ts';
import { buildIris, sql, writeIrisData } from './fixtures.ts';

/** `pyml batch` end to end: the real CLI, the iris image built here, real DuckDB files and Parquet datasets. */

const ROWS = 5000;
let image = '';
let dir = '';
let data: { parquet: string; csv: string };

test.before(async () => {
  image = await buildIris();
  dir = await tempDir('pyml-batch-');
  data = await writeIrisData(dir, ROWS);
});

const features = 'sepal_length, sepal_width, petal_length, petal_width';

test('Parquet → DuckDB table: one row per input row, --keep id, outputs as columns', async () => {
  const db = join(dir, 'warehouse.duckdb');
  const r = await pyml(['batch', image, '--query', `SELECT id, ${features} FROM read_parquet('${data.parquet}')`, '--into', 'predictions', '--db', db, '--keep', 'id', '--workers', '2', '--json']);
  assert.is(r.code, 0, r.stderr);
  const summary = parseJson<{ ok: boolean; rows: number; output: string; packed: { input: string; columns: string[] } }>(r);
  assert.ok(summary.ok);
  assert.is(summary.rows, ROWS);
  assert.equal(summary.packed, { input: 'input', columns: ['sepal_length', 'sepal_width', 'petal_length', 'petal_width'] });
  const columns = await sql(db, `SELECT column_name, data_type FROM information_schema.columns WHERE table_name = 'predictions' ORDER BY ordinal_position`);
  assert.equal(columns, [
    { column_name: 'id', data_type: 'BIGINT' },
    { column_name: 'probabilities', data_type: 'FLOAT[3]' },
    { column_name: 'label', data_type: 'BIGINT' },
  ]);
  const [stats] = await sql(db, `SELECT count(*)::INT AS n, count(DISTINCT id)::INT AS ids, min(id)::INT AS lo, max(id)::INT AS hi,
      count(*) FILTER (WHERE label NOT IN (0, 1, 2))::INT AS bad_labels,
      max(abs(list_sum(probabilities::FLOAT[]) - 1))::DOUBLE AS worst_sum,
      count(DISTINCT label)::INT AS classes FROM predictions`);
  assert.equal(stats, { n: ROWS, ids: ROWS, lo: 0, hi: ROWS - 1, bad_labels: 0, worst_sum: stats.worst_sum, classes: 3 });
  assert.ok((stats.worst_sum as number) < 1e-5, `probabilities sum to 1 (worst ${stats.worst_sum})`);
  // label is the argmax of probabilities for every row.
  const [argmax] = await sql(db, `SELECT count(*)::INT AS wrong FROM predictions
      WHERE label != list_position(probabilities::FLOAT[], list_max(probabilities::FLOAT[])) - 1`);
  assert.is(argmax.wrong, 0);
});

test('CSV → Hive-partitioned Parquet dataset, read back with DuckDB', async () => {
  const out = join(dir, 'predictions');
  const query = `SELECT id, ds, ${['sepal_length', 'sepal_width', 'petal_length', 'petal_width'].map((c) => `${c}::FLOAT AS ${c}`).join(', ')} FROM read_csv('${data.csv}')`;
  const r = await pyml(['batch', image, '--query', query, '--out', out, '--format', 'parquet', '--partition-by', 'ds', '--keep', 'id', '--json']);
  assert.is(r.code, 0, r.stderr);
  assert.is(parseJson<{ rows: number }>(r).rows, ROWS);
  assert.equal((await readdir(out)).sort(), ['ds=2024-01-01', 'ds=2024-01-02', 'ds=2024-01-03']);
  const rows = await sql(undefined, `SELECT ds::VARCHAR AS ds, count(*)::INT AS n, count(DISTINCT id)::INT AS ids, bool_and(id % 3 + 1 = right(ds::VARCHAR, 1)::INT) AS right_day
      FROM read_parquet('${out}/**/*.parquet', hive_partitioning = true) GROUP BY ALL ORDER BY ds`);
  assert.equal(rows, [
    { ds: '2024-01-01', n: 1667, ids: 1667, right_day: true },
    { ds: '2024-01-02', n: 1667, ids: 1667, right_day: true },
    { ds: '2024-01-03', n: 1666, ids: 1666, right_day: true },
  ]);
  // No temp directories are left beside the dataset.
  assert.equal((await readdir(dir)).filter((f) => f.includes('.pyml-')), []);
});

test('the same rows give the same predictions from Parquet and from CSV', async () => {
  const db = join(dir, 'warehouse.duckdb');
  const [diff] = await sql(db, `SELECT count(*)::INT AS n FROM predictions p
      JOIN read_parquet('${join(dir, 'predictions')}/**/*.parquet', hive_partitioning = true) q USING (id)
      WHERE p.label != q.label OR p.probabilities::FLOAT[] != q.probabilities`);
  assert.is(diff.n, 0);
});

test('columns are checked before any row runs: each missing or mistyped column is named', async () => {
  const db = join(dir, 'checks.duckdb');
  const run = (query: string, ...extra: string[]) => pyml(['batch', image, '--query', query, '--into', 't', '--db', db, '--json', ...extra]);

  // Five columns where four are packed, and one of them is a DOUBLE (DOUBLE → FLOAT would round).
  let r = await run(`SELECT id, sepal_length::DOUBLE AS sepal_length, sepal_width, petal_length, petal_width FROM read_parquet('${data.parquet}')`, '--keep', 'id');
  assert.is(r.code, 1);
  let message = parseJson<{ error: { message: string } }>(r).error.message;
  assert.match(message, /column 'sepal_length' is DOUBLE; packed into input 'input' it must be a number that fits FLOAT \(DOUBLE → FLOAT would lose precision/);
  assert.not.match(message, /sepal_width/);

  // Too few columns to pack, and a --keep column that is not there.
  r = await run(`SELECT id, sepal_length, sepal_width FROM read_parquet('${data.parquet}')`, '--keep', 'id,row_key');
  assert.is(r.code, 1);
  message = parseJson<{ error: { message: string } }>(r).error.message;
  assert.match(message, /--keep column 'row_key' is not in the query result/);
  assert.match(message, /input 'input' \(FP32 \[-1, 4\], i\.e\. FLOAT\[4\]\) is not a column of the query, so its 4 values per row are packed .* the query has 2 \(sepal_length, sepal_width\)/);

  // A column named like the input is read directly: a LIST is refused with the cast to use; a wrong size is named.
  r = await run(`SELECT [${features}] AS input FROM read_parquet('${data.parquet}')`);
  assert.is(r.code, 1);
  assert.match(parseJson<{ error: { message: string } }>(r).error.message, /column 'input' is FLOAT\[\] \(a variable-length LIST\); input 'input' needs FP32 \[-1, 4\], i\.e\. FLOAT\[4\]: cast it in the query, e\.g\. "input"::FLOAT\[4\]/);
  r = await run(`SELECT [sepal_length, sepal_width]::FLOAT[2] AS input, id FROM read_parquet('${data.parquet}')`);
  assert.is(r.code, 1);
  message = parseJson<{ error: { message: string } }>(r).error.message;
  assert.match(message, /column 'input' is FLOAT\[2\]; input 'input' needs FP32 \[-1, 4\]/);
  assert.match(message, /column 'id' is neither a model input \(input\) nor a --keep column/);

  // Nothing was written, and the lossless widening case passes: SMALLINT columns packed into FLOAT.
  assert.equal(await sql(db, `SELECT count(*)::INT AS n FROM information_schema.tables WHERE table_name = 't'`), [{ n: 0 }]);
  r = await run(`SELECT (sepal_length * 10)::SMALLINT AS a, (sepal_width * 10)::SMALLINT AS b, (petal_length * 10)::TINYINT AS c, (petal_width * 10)::UTINYINT AS d FROM read_parquet('${data.parquet}') LIMIT 10`);
  assert.is(r.code, 0, r.stderr);
  assert.equal(await sql(db, 'SELECT count(*)::INT AS n FROM t'), [{ n: 10 }]);

  // A --db that is not a DuckDB database is named, and left as it was.
  const notes = join(dir, 'notes.txt');
  await writeFile(notes, 'not a database\n');
  r = await pyml(['batch', image, '--query', `SELECT ${features} FROM read_parquet('${data.parquet}')`, '--into', 't', '--db', notes, '--json']);
  assert.is(r.code, 1);
  assert.match(parseJson<{ error: { message: string } }>(r).error.message, new RegExp(`^--db ${notes}: The file "${notes}" exists, but it is not a valid DuckDB database file`));
  assert.is(await readFile(notes, 'utf8'), 'not a database\n');
});

test('an input given as its own FLOAT[4] column maps directly; an empty query writes an empty table', async () => {
  const db = join(dir, 'direct.duckdb');
  let r = await pyml(['batch', image, '--query', `SELECT id, [${features}]::FLOAT[4] AS input FROM read_parquet('${data.parquet}')`, '--into', 'direct', '--db', db, '--keep', 'id', '--json']);
  assert.is(r.code, 0, r.stderr);
  assert.is(parseJson<{ packed?: unknown }>(r).packed, undefined);
  const [same] = await sql(db, `ATTACH '${join(dir, 'warehouse.duckdb')}' AS w (READ_ONLY);
      SELECT count(*)::INT AS n, count(*) FILTER (WHERE d.label = p.label AND d.probabilities = p.probabilities)::INT AS same
      FROM direct d JOIN w.predictions p USING (id)`);
  assert.equal(same, { n: ROWS, same: ROWS });

  // A query column named rowid (DuckDB's pseudo-column name) passes through as a --keep column.
  r = await pyml(['batch', image, '--query', `SELECT id AS rowid, ${features} FROM read_parquet('${data.parquet}') WHERE id < 100`, '--into', 'ids', '--db', db, '--keep', 'rowid', '--json']);
  assert.is(r.code, 0, r.stderr);
  assert.equal(await sql(db, 'SELECT count(*)::INT AS n, sum("rowid")::INT AS s FROM ids'), [{ n: 100, s: 4950 }]);

  r = await pyml(['batch', image, '--query', `SELECT id, ${features} FROM read_parquet('${data.parquet}') WHERE id < 0`, '--into', 'empty', '--db', db, '--keep', 'id', '--json']);
  assert.is(r.code, 0, r.stderr);
  assert.is(parseJson<{ rows: number }>(r).rows, 0);
  assert.equal(await sql(db, 'SELECT count(*)::INT AS n FROM empty'), [{ n: 0 }]);
});

test('workers > 1 with small batches keep row order and keys', async () => {
  const db = join(dir, 'order.duckdb');
  const query = `SELECT id, ${features} FROM read_parquet('${data.parquet}') ORDER BY id DESC`;
  for (const [table, workers] of [['one', '1'], ['three', '3']] as const) {
    const r = await pyml(['batch', image, '--query', query, '--into', table, '--db', db, '--keep', 'id', '--workers', workers, '--batch-rows', '300', '--json']);
    assert.is(r.code, 0, r.stderr);
    assert.is(parseJson<{ batches: number }>(r).batches, Math.ceil(ROWS / 300));
  }
  // Table order follows the query's ORDER BY, and each id carries the same prediction whatever the worker count.
  const [order] = await sql(db, `SELECT count(*) FILTER (WHERE id != ${ROWS - 1} - rowid)::INT AS misplaced FROM three`);
  assert.is(order.misplaced, 0);
  const [diff] = await sql(db, `SELECT count(*)::INT AS n FROM one JOIN three USING (id) WHERE one.label = three.label AND one.probabilities = three.probabilities`);
  assert.is(diff.n, ROWS);
  // And the same as the default batch size, where each batch held 4096 rows from other ids.
  const [vsDefault] = await sql(db, `ATTACH '${join(dir, 'warehouse.duckdb')}' AS w (READ_ONLY);
      SELECT count(*)::INT AS n FROM three JOIN w.predictions p USING (id) WHERE three.label = p.label AND three.probabilities = p.probabilities`);
  assert.is(vsDefault.n, ROWS);
});

test('usage errors exit 2 with what is missing', async () => {
  let r = await pyml(['batch', image, '--query', 'SELECT 1', '--into', 't']);
  assert.is(r.code, 2);
  assert.match(r.stderr, /--into TABLE needs --db FILE\.duckdb/);
  r = await pyml(['batch', image, '--query', 'SELECT 1']);
  assert.is(r.code, 2);
  assert.match(r.stderr, /needs a target/);
  r = await pyml(['batch', image, '--query', 'SELECT 1', '--out', join(dir, 'x'), '--format', 'csv']);
  assert.is(r.code, 2);
  assert.match(r.stderr, /only parquet/);
});

test.run();
