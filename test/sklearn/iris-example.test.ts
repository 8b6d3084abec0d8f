/**
 * examples/sklearn-iris end to end: the committed pickle is what make-model.py makes, the image built from it
 * serves a dataframe signature, `pyml predict` and `pyml batch` (from Parquet) give scikit-learn's predictions.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { readFile, rm } from 'node:fs/promises';
import path from 'node:path';
import { DuckDBInstance } from '@duckdb/node-api';
import { pyml, parseJson, REPO, runProcess } from '../helpers/cli.ts';
import { tempDir } from '../helpers/project.ts';

const PYTHON = '/usr/bin/python3';
const example = path.join(REPO, 'examples/sklearn-iris');
const COLUMNS = ['sepal_length', 'sepal_width', 'petal_length', 'petal_width'];
const CLASSES = ['setosa', 'versicolor', 'virginica'];
let work: string;

/** scikit-learn's own predictions of the example's pickle on the rows of data/iris.csv. */
async function sklearnPredictions(): Promise<{ label: string[]; proba: number[][] }> {
  const script = [
    'import json, pickle, sys, warnings, numpy as np',
    'warnings.filterwarnings("ignore")',
    `m = pickle.load(open(${JSON.stringify(path.join(example, 'weights/model.pkl'))}, "rb"))`,
    `X = np.genfromtxt(${JSON.stringify(path.join(example, 'data/iris.csv'))}, delimiter=",", skip_header=1, usecols=(1, 2, 3, 4))`,
    'print(json.dumps({"label": m.predict(X).tolist(), "proba": m.predict_proba(X).tolist()}))',
  ].join('\n');
  const r = await runProcess(PYTHON, ['-c', script]);
  assert.is(r.code, 0, `python3 (python3-sklearn) failed: ${r.stderr}`);
  return JSON.parse(r.stdout) as { label: string[]; proba: number[][] };
}

test.before(async () => {
  work = await tempDir('pyml-sklearn-iris-');
  const r = await pyml(['build', example, '--out', `${work}/oci`, '--json']);
  assert.is(r.code, 0, r.stderr);
});

test.after(async () => { await rm(work, { recursive: true, force: true }); });

test('make-model.py reproduces the committed pickle byte for byte', async () => {
  const r = await runProcess(PYTHON, [path.join(example, 'make-model.py'), `${work}/model.pkl`]);
  assert.is(r.code, 0, r.stderr);
  assert.ok((await readFile(`${work}/model.pkl`)).equals(await readFile(path.join(example, 'weights/model.pkl'))), 'same bytes');
});

test('the image serves a dataframe: four FP64 columns in, label and one probability per species out', async () => {
  const r = await pyml(['inspect', 'image', `${work}/oci`, '--json']);
  assert.is(r.code, 0, r.stderr);
  const d = parseJson<{ kind: string; signature: { inputs: { name: string; dtype: string; shape: number[] }[]; outputs: { name: string; dtype: string }[] } }>(r);
  assert.is(d.kind, 'dataframe');
  assert.equal(d.signature.inputs, COLUMNS.map((name) => ({ name, dtype: 'FP64', shape: [-1] })));
  assert.equal(d.signature.outputs.map((o) => `${o.name}:${o.dtype}`), ['label:BYTES', ...CLASSES.map((c) => `probability_${c}:FP64`)]);
});

test('pyml predict on sample.json gives scikit-learn labels and probabilities', async () => {
  const r = await pyml(['predict', `${work}/oci`, '--input', path.join(example, 'sample.json'), '--json']);
  assert.is(r.code, 0, r.stderr);
  const outputs = parseJson<{ outputs: { name: string; data: (string | number)[] }[] }>(r).outputs;
  const sample = JSON.parse(await readFile(path.join(example, 'sample.json'), 'utf8')) as { inputs: { name: string; data: number[] }[] };
  const script = [
    'import json, pickle, sys, warnings, numpy as np', 'warnings.filterwarnings("ignore")',
    `m = pickle.load(open(${JSON.stringify(path.join(example, 'weights/model.pkl'))}, "rb"))`,
    `X = np.array(${JSON.stringify(sample.inputs.map((i) => i.data))}).T`,
    'print(json.dumps({"label": m.predict(X).tolist(), "proba": m.predict_proba(X).tolist()}))',
  ].join('\n');
  const py = await runProcess(PYTHON, ['-c', script]);
  assert.is(py.code, 0, py.stderr);
  const want = JSON.parse(py.stdout) as { label: string[]; proba: number[][] };
  assert.equal(outputs.find((o) => o.name === 'label')!.data, want.label);
  CLASSES.forEach((c, k) => {
    const got = outputs.find((o) => o.name === `probability_${c}`)!.data.map(Number);
    got.forEach((p, i) => assert.ok(Math.abs(p - want.proba[i]![k]!) <= 1e-5, `probability_${c}[${i}]: ${p} vs ${want.proba[i]![k]}`));
  });
});

test('pyml batch from a Parquet file writes scikit-learn predictions for every row', async () => {
  const db = await DuckDBInstance.create(':memory:');
  const conn = await db.connect();
  await conn.run(`COPY (SELECT * FROM read_csv('${path.join(example, 'data/iris.csv')}')) TO '${work}/iris.parquet' (FORMAT parquet)`);
  conn.closeSync();
  const r = await pyml(['batch', `${work}/oci`, '--query', `SELECT id, ${COLUMNS.join(', ')} FROM read_parquet('${work}/iris.parquet')`,
    '--into', 'predictions', '--db', `${work}/out.duckdb`, '--keep', 'id', '--json']);
  assert.is(r.code, 0, r.stderr);
  const out = await (await DuckDBInstance.create(`${work}/out.duckdb`)).connect();
  const rows = (await out.runAndReadAll(`SELECT id, label, ${CLASSES.map((c) => `probability_${c}`).join(', ')} FROM predictions ORDER BY id`)).getRowObjectsJS();
  out.closeSync();
  const want = await sklearnPredictions();
  assert.is(rows.length, 150);
  rows.forEach((row, i) => {
    assert.is(row.label, want.label[i], `row ${String(row.id)}`);
    CLASSES.forEach((c, k) => assert.ok(Math.abs(Number(row[`probability_${c}`]) - want.proba[i]![k]!) <= 1e-5, `row ${String(row.id)} probability_${c}`));
  });
});

test.run();
