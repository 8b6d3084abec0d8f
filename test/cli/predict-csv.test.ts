/**
 * One CSV reader: `pyml predict --input rows.csv` reads a CSV as `pyml batch` does (DuckDB's read_csv, batch's
 * column → input mapping, --keep for the columns that are not inputs), so examples/onnx-iris/sample.csv, with its
 * id column, gives the same predictions from both, and the same JSON request gives them too.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { readFileSync } from 'node:fs';
import { rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { DuckDBInstance } from '@duckdb/node-api';
import { pyml, parseJson, REPO } from '../helpers/cli.ts';
import { tempDir } from '../helpers/project.ts';

const SAMPLE_CSV = path.join(REPO, 'examples', 'onnx-iris', 'sample.csv');
let dir = '';
let image = '';

interface V2Response { outputs: { name: string; datatype: string; shape: number[]; data: unknown[] }[] }

test.before(async () => {
  dir = await tempDir('pyml-predict-csv-');
  image = path.join(dir, 'iris');
  const r = await pyml(['build', path.join(REPO, 'examples', 'onnx-iris'), '--out', image]);
  assert.is(r.code, 0, r.stderr);
});
test.after(async () => { await rm(dir, { recursive: true, force: true }); });

test('sample.csv (id + 4 features) with --keep id: the same labels as the JSON request of its rows and as pyml batch', async () => {
  const csv = await pyml(['predict', image, '--input', SAMPLE_CSV, '--keep', 'id', '--json']);
  assert.is(csv.code, 0, csv.stderr);
  const fromCsv = parseJson<V2Response>(csv);

  // The same rows as a V2 JSON request.
  const [, ...rows] = readFileSync(SAMPLE_CSV, 'utf8').trim().split('\n').map((l) => l.split(','));
  const request = path.join(dir, 'rows.json');
  await writeFile(request, JSON.stringify({ inputs: [{ name: 'input', datatype: 'FP32', shape: [rows.length, 4], data: rows.flatMap((r) => r.slice(1).map(Number)) }] }));
  const json = await pyml(['predict', image, '--input', request, '--json']);
  assert.is(json.code, 0, json.stderr);
  const fromJson = parseJson<V2Response>(json);
  assert.equal(fromCsv.outputs, fromJson.outputs, 'CSV and JSON requests of the same rows answer alike');
  const labels = fromCsv.outputs.find((o) => o.name === 'label')!;
  assert.equal(labels.shape, [rows.length]);

  // pyml batch on the same file, the same --keep (its query casts the DOUBLE columns to FLOAT, as batch asks).
  const db = path.join(dir, 'out.duckdb');
  const query = `SELECT id, sepal_length::FLOAT AS sepal_length, sepal_width::FLOAT AS sepal_width, petal_length::FLOAT AS petal_length, petal_width::FLOAT AS petal_width FROM read_csv('${SAMPLE_CSV}')`;
  const batch = await pyml(['batch', image, '--query', query, '--into', 'predictions', '--db', db, '--keep', 'id', '--workers', '1']);
  assert.is(batch.code, 0, batch.stderr);
  const instance = await DuckDBInstance.create(db);
  const connection = await instance.connect();
  try {
    const fromBatch = (await connection.runAndReadAll('SELECT label FROM predictions ORDER BY id')).getRowsJS().map(([l]) => Number(l));
    assert.equal(fromBatch, labels.data.map(Number), 'batch and predict agree row by row');
  } finally {
    connection.closeSync();
    instance.closeSync();
  }
});

test('without --keep, the id column is refused as batch refuses it, naming --keep id; a bad cell names its row and column', async () => {
  const r = await pyml(['predict', image, '--input', SAMPLE_CSV]);
  assert.is(r.code, 1, r.stderr);
  assert.match(r.stderr, /sample\.csv: the CSV's columns do not fit the model's signature/);
  assert.match(r.stderr, /column 'id' is neither a model input \(input\) nor a --keep column/);
  assert.match(r.stderr, /name the columns that are not model inputs with --keep \(e\.g\. --keep id\)/);
  const bad = path.join(dir, 'bad.csv');
  await writeFile(bad, 'id,a,b,c,d\n1,5.1,3.5,1.4,0.2\n2,4.9,three,1.4,0.2\n');
  const b = await pyml(['predict', image, '--input', bad, '--keep', 'id']);
  assert.is(b.code, 1, b.stderr);
  assert.match(b.stderr, /bad\.csv: row 3, column 'b': "three" is not a number \(FP32\)/);
  const keepJson = await pyml(['predict', image, '--input', path.join(REPO, 'examples', 'onnx-iris', 'sample.json'), '--keep', 'id']);
  assert.is(keepJson.code, 2);
  assert.match(keepJson.stderr, /--keep names columns of a CSV --input/);
});

test('a JSON request does not load DuckDB', async () => {
  const src = readFileSync(path.join(REPO, 'packages', 'serve', 'src', 'predict-once.ts'), 'utf8');
  assert.not.match(src, /^import .*(duckdb|@pyml\/batch)/m, 'predict-once imports neither at the top');
  const csvReader = readFileSync(path.join(REPO, 'packages', 'batch', 'src', 'csv-request.ts'), 'utf8');
  assert.not.match(csvReader, /^import (?!type ).*(duckdb|column-plan)/m, 'csv-request loads them only when called');
});

test.run();
