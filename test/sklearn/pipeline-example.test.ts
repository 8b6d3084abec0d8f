/**
 * examples/sklearn-pipeline end to end: a Pipeline (ColumnTransformer: imputer + scaler on numbers, one-hot on
 * strings; LogisticRegression) fitted on a pandas frame. The committed files are what make-model.py makes; the
 * image takes INT64, FP64 (NaN) and BYTES columns; `pyml predict` (unseen categories, a NaN) and `pyml batch` over
 * the CSV read by DuckDB (VARCHAR strings, BIGINT integers, NULLs sent as NaN) give scikit-learn's predictions.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { readFile, rm } from 'node:fs/promises';
import path from 'node:path';
import { DuckDBInstance } from '@duckdb/node-api';
import { pyml, parseJson, REPO, runProcess } from '../helpers/cli.ts';
import { tempDir } from '../helpers/project.ts';

const PYTHON = '/usr/bin/python3';
const example = path.join(REPO, 'examples/sklearn-pipeline');
const CLASSES = ['leaves', 'stays'];
let work: string;

/** scikit-learn's own predictions of the example's pickle on a pandas frame (given as JSON columns, "NaN" for NaN). */
async function sklearnPredictions(columns: Record<string, (number | string)[]>): Promise<{ label: string[]; proba: number[][] }> {
  const script = [
    'import json, pickle, sys, warnings, numpy as np, pandas as pd', 'warnings.filterwarnings("ignore")',
    `m = pickle.load(open(${JSON.stringify(path.join(example, 'weights/model.pkl'))}, "rb"))`,
    'cols = json.load(sys.stdin)',
    'X = pd.DataFrame({k: [np.nan if v == "NaN" else v for v in vs] for k, vs in cols.items()})',
    'print(json.dumps({"label": m.predict(X).tolist(), "proba": m.predict_proba(X).tolist()}))',
  ].join('\n');
  const r = await runProcess(PYTHON, ['-c', script], { input: JSON.stringify(columns) });
  assert.is(r.code, 0, `python3 (python3-sklearn, python3-pandas) failed: ${r.stderr}`);
  return JSON.parse(r.stdout) as { label: string[]; proba: number[][] };
}

test.before(async () => {
  work = await tempDir('pyml-sklearn-pipeline-');
  const r = await pyml(['build', example, '--out', `${work}/oci`, '--json']);
  assert.is(r.code, 0, r.stderr);
});

test.after(async () => { await rm(work, { recursive: true, force: true }); });

test('make-model.py reproduces the committed pickle and table byte for byte', async () => {
  const r = await runProcess(PYTHON, [path.join(example, 'make-model.py'), `${work}/model.pkl`, `${work}/customers.csv`]);
  assert.is(r.code, 0, r.stderr);
  assert.ok((await readFile(`${work}/model.pkl`)).equals(await readFile(path.join(example, 'weights/model.pkl'))), 'same pickle');
  assert.ok((await readFile(`${work}/customers.csv`)).equals(await readFile(path.join(example, 'data/customers.csv'))), 'same table');
});

test('the image serves the frame: INT64, FP64 and BYTES columns in, label and one probability per class out', async () => {
  const r = await pyml(['inspect', 'image', `${work}/oci`, '--json']);
  assert.is(r.code, 0, r.stderr);
  const d = parseJson<{ kind: string; signature: { inputs: { name: string; dtype: string; shape: number[] }[]; outputs: { name: string; dtype: string }[] } }>(r);
  assert.is(d.kind, 'dataframe');
  assert.equal(d.signature.inputs.map((i) => `${i.name}:${i.dtype}`), ['age:INT64', 'tenure_months:INT64', 'monthly_spend:FP64', 'city:BYTES', 'plan:BYTES']);
  assert.equal(d.signature.outputs.map((o) => `${o.name}:${o.dtype}`), ['label:BYTES', ...CLASSES.map((c) => `probability_${c}:FP64`)]);
});

test('pyml predict on sample.json (a NaN, unseen city and plan) gives scikit-learn labels and probabilities', async () => {
  const r = await pyml(['predict', `${work}/oci`, '--input', path.join(example, 'sample.json'), '--json']);
  assert.is(r.code, 0, r.stderr);
  const outputs = parseJson<{ outputs: { name: string; data: (string | number)[] }[] }>(r).outputs;
  const sample = JSON.parse(await readFile(path.join(example, 'sample.json'), 'utf8')) as { inputs: { name: string; data: (number | string)[] }[] };
  const want = await sklearnPredictions(Object.fromEntries(sample.inputs.map((i) => [i.name, i.data])));
  assert.equal(outputs.find((o) => o.name === 'label')!.data, want.label);
  CLASSES.forEach((c, k) => {
    const got = outputs.find((o) => o.name === `probability_${c}`)!.data.map(Number);
    got.forEach((p, i) => assert.ok(Math.abs(p - want.proba[i]![k]!) <= 1e-12, `probability_${c}[${i}]: ${p} vs ${want.proba[i]![k]}`));
  });
});

test('pyml batch over the CSV (VARCHAR, BIGINT, NULL as NaN) writes scikit-learn predictions for every row', async () => {
  const csv = path.join(example, 'data/customers.csv');
  const r = await pyml(['batch', `${work}/oci`, '--query',
    `SELECT id, age, tenure_months, coalesce(monthly_spend, 'NaN'::DOUBLE) AS monthly_spend, city, plan FROM read_csv('${csv}')`,
    '--into', 'predictions', '--db', `${work}/out.duckdb`, '--keep', 'id', '--json']);
  assert.is(r.code, 0, r.stderr);
  const out = await (await DuckDBInstance.create(`${work}/out.duckdb`)).connect();
  const rows = (await out.runAndReadAll(`SELECT id, label, ${CLASSES.map((c) => `probability_${c}`).join(', ')} FROM predictions ORDER BY id`)).getRowObjectsJS();
  out.closeSync();
  const lines = (await readFile(csv, 'utf8')).trim().split('\n');
  const header = lines[0]!.split(',');
  const table = lines.slice(1).map((l) => l.split(','));
  const column = (name: string, parse: (v: string) => number | string) => table.map((cells) => parse(cells[header.indexOf(name)]!));
  const want = await sklearnPredictions({
    age: column('age', Number), tenure_months: column('tenure_months', Number),
    monthly_spend: column('monthly_spend', (v) => (v === '' ? 'NaN' : Number(v))), city: column('city', String), plan: column('plan', String),
  });
  assert.is(rows.length, 300);
  rows.forEach((row, i) => {
    assert.is(row.label, want.label[i], `row ${String(row.id)}`);
    CLASSES.forEach((c, k) => assert.ok(Math.abs(Number(row[`probability_${c}`]) - want.proba[i]![k]!) <= 1e-12, `row ${String(row.id)} probability_${c}`));
  });
});

test.run();
