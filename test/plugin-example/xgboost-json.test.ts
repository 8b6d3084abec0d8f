/**
 * The third-party plugin example (examples/plugin-xgboost-json): a package written only against pyml's public
 * plugin API. Its model example builds, predicts, serves and batch-predicts, and every prediction is checked
 * against values computed without the plugin's code: XGBoost's own Booster.predict (reference.json, written by
 * make-model.py) and an independent standard-library Python walk of the same trees (walk_trees.py).
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { cp, readFile, rm, symlink, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { createInterface } from 'node:readline';
import { DuckDBInstance } from '@duckdb/node-api';
import { PYML_BIN, REPO, parseJson, pyml, runProcess, testEnv } from '../helpers/cli.ts';
import { tempDir } from '../helpers/project.ts';
import { requireTool } from '../helpers/tools.ts';
import { Booster } from '../../examples/plugin-xgboost-json/src/booster.ts';
import { tensor } from '@pyml/contract';

const PACKAGE = path.join(REPO, 'examples', 'plugin-xgboost-json');
const WALKER = path.join(REPO, 'test', 'plugin-example', 'walk_trees.py');
const TOLERANCE = 2e-6; // float32 outputs vs float64 references

interface Reference { inputs: (number | null)[][]; probabilities: number[][]; label: number[] }

let work: string;
let project: string;
let image: string;
let reference: Reference;
let modelFile: string;

function assertClose(actual: ArrayLike<number>, expected: number[], what: string): void {
  assert.is(actual.length, expected.length, `${what}: length`);
  for (let i = 0; i < expected.length; i++) {
    if (!(Math.abs(actual[i]! - expected[i]!) <= TOLERANCE)) assert.unreachable(`${what}[${i}]: ${actual[i]} vs reference ${expected[i]}`);
  }
}

/** Outputs of the independent Python walker for rows (null = missing). */
async function walk(rows: (number | null)[][]): Promise<number[][]> {
  const r = await runProcess('python3', [WALKER, modelFile], { input: JSON.stringify({ inputs: rows }) });
  if (r.code !== 0) throw new Error(`walk_trees.py failed (${r.code}): ${r.stderr}`);
  return (JSON.parse(r.stdout) as { outputs: number[][] }).outputs;
}

/** Seeded rows around the model's own split values (so comparisons at the thresholds are exercised), some missing. */
function probeRows(n: number): (number | null)[][] {
  let seed = 12345;
  const rand = () => ((seed = (Math.imul(seed, 1103515245) + 12345) >>> 0) / 2 ** 32);
  const rows: (number | null)[][] = [];
  for (let i = 0; i < n; i++) {
    rows.push([0, 1, 2, 3].map((f) => {
      const u = rand();
      if (u < 0.05) return null;
      const ranges = [[4, 8], [2, 4.5], [1, 7], [0, 2.6]][f]!;
      return Math.round((ranges[0]! + rand() * (ranges[1]! - ranges[0]!)) * 10) / 10; // iris-like 0.1 steps hit split values
    }));
  }
  return rows;
}

test.before(async () => {
  requireTool('python3');
  work = await tempDir('pyml-plugin-example-');
  // As a user would have it: the plugin package with its example, and the pyml packages installed beside it.
  const pkg = path.join(work, 'plugin-xgboost-json');
  await cp(PACKAGE, pkg, { recursive: true, filter: (src) => !src.includes(`${path.sep}.pyml`) });
  await symlink(path.join(REPO, 'node_modules'), path.join(pkg, 'node_modules'));
  project = path.join(pkg, 'example');
  modelFile = path.join(project, 'weights', 'model.json');
  reference = JSON.parse(await readFile(path.join(project, 'reference.json'), 'utf8')) as Reference;
  image = path.join(work, 'image');
});
test.after(async () => { await rm(work, { recursive: true, force: true }); });

test('the example builds; the plugin infers the signature from model.json; no dependency layer', async () => {
  const r = await pyml(['build', project, '--out', image, '--tar', path.join(work, 'image.tar'), '--json']);
  assert.is(r.code, 0, r.stderr);
  const json = parseJson<{ signature: unknown; parts: { part: string }[] }>(r);
  assert.equal(json.signature, {
    inputs: [{ name: 'input', dtype: 'FP32', shape: [-1, 4] }],
    outputs: [{ name: 'probabilities', dtype: 'FP32', shape: [-1, 3] }, { name: 'label', dtype: 'INT64', shape: [-1] }],
  });
  assert.equal(json.parts.map((p) => p.part), ['base', 'weights', 'model', 'entrypoint']);
  const inspect = parseJson<{ plugins: { name: string }[] }>(await pyml(['inspect', 'image', image, '--json', '--verify']));
  assert.equal(inspect.plugins.map((p) => p.name), ['xgboost-json']);
});

test('the walker agrees with XGBoost itself (so it can serve as a reference for rows XGBoost did not score)', async () => {
  const walked = await walk(reference.inputs);
  walked.forEach((row, i) => assertClose(row, reference.probabilities[i]!, `walker row ${i}`));
});

test('pyml predict matches XGBoost\'s Booster.predict on every reference row without missing values', async () => {
  const rows = reference.inputs.map((r, i) => ({ r, i })).filter(({ r }) => r.every((v) => v !== null));
  assert.ok(rows.length >= 30);
  const request = path.join(work, 'request.json');
  await writeFile(request, JSON.stringify({ inputs: [{ name: 'input', datatype: 'FP32', shape: [rows.length, 4], data: rows.flatMap(({ r }) => r) }] }));
  const r = await pyml(['predict', image, '--input', request, '--json']);
  assert.is(r.code, 0, r.stderr);
  const out = parseJson<{ outputs: { name: string; shape: number[]; data: number[] }[] }>(r).outputs;
  const probs = out.find((o) => o.name === 'probabilities')!;
  const label = out.find((o) => o.name === 'label')!;
  assert.equal(probs.shape, [rows.length, 3]);
  assertClose(probs.data, rows.flatMap(({ i }) => reference.probabilities[i]!), 'probabilities');
  assert.equal(label.data.map(Number), rows.map(({ i }) => reference.label[i]));
});

test('missing values (NaN) take each node\'s default branch, as in XGBoost', () => {
  const booster = Booster.fromJson(readFileSync(modelFile, 'utf8'), 'model.json');
  const x = Float32Array.from(reference.inputs.flat(), (v) => (v === null ? NaN : v));
  const out = booster.predict({ input: tensor('FP32', [reference.inputs.length, 4], x) });
  assertClose(out.probabilities!.data as Float32Array, reference.probabilities.flat(), 'probabilities');
  assert.ok(reference.inputs.some((r) => r.includes(null)), 'the reference has rows with missing values');
});

test('other objectives: binary:logistic (sigmoid of the margin from base_score) and reg:squarederror match XGBoost', async () => {
  for (const name of ['binary', 'regression']) {
    const file = path.join(project, 'objectives', `${name}.json`);
    const ref = JSON.parse(readFileSync(path.join(project, 'objectives', `${name}.reference.json`), 'utf8')) as { inputs: (number | null)[][]; outputs: number[] };
    const booster = Booster.fromJson(readFileSync(file, 'utf8'), `${name}.json`);
    const x = Float32Array.from(ref.inputs.flat(), (v) => (v === null ? NaN : v));
    const out = booster.predict({ input: tensor('FP32', [ref.inputs.length, 4], x) });
    if (name === 'binary') {
      assert.equal(Object.keys(out).sort(), ['label', 'probability']);
      assertClose(out.probability!.data as Float32Array, ref.outputs, `${name} probability`);
      assert.equal(Array.from(out.label!.data as BigInt64Array, Number), ref.outputs.map((p) => (p >= 0.5 ? 1 : 0)));
    } else {
      assert.equal(Object.keys(out), ['prediction']);
      assertClose(out.prediction!.data as Float32Array, ref.outputs, `${name} prediction`);
    }
    const walked = await (async () => {
      const r = await runProcess('python3', [WALKER, file], { input: JSON.stringify({ inputs: ref.inputs }) });
      return (JSON.parse(r.stdout) as { outputs: number[][] }).outputs.map((o) => o[0]!);
    })();
    assertClose(walked, ref.outputs, `${name}: walker`);
  }
});

test('pyml batch over a CSV (with missing values) matches the independent walker row by row', async () => {
  const rows = probeRows(400);
  const csv = path.join(work, 'probe.csv');
  await writeFile(csv, `id,f0,f1,f2,f3\n${rows.map((r, i) => `${i},${r.map((v) => (v === null ? 'NaN' : v)).join(',')}`).join('\n')}\n`);
  const db = path.join(work, 'out.duckdb');
  const r = await pyml(['batch', image, '--query', `SELECT id, f0::FLOAT f0, f1::FLOAT f1, f2::FLOAT f2, f3::FLOAT f3 FROM read_csv('${csv}') ORDER BY id`,
    '--into', 'predictions', '--db', db, '--keep', 'id', '--json']);
  assert.is(r.code, 0, r.stderr);
  assert.is(parseJson<{ rows: number }>(r).rows, rows.length);
  const instance = await DuckDBInstance.create(db);
  const connection = await instance.connect();
  const got = (await connection.runAndReadAll('SELECT id, probabilities[1] p0, probabilities[2] p1, probabilities[3] p2, label FROM predictions ORDER BY id')).getRowObjectsJS();
  connection.closeSync();
  instance.closeSync();
  const expected = await walk(rows);
  assert.is(got.length, rows.length);
  got.forEach((row, i) => {
    assert.is(Number(row.id), i);
    assertClose([row.p0, row.p1, row.p2] as number[], expected[i]!, `batch row ${i}`);
    const best = expected[i]!.indexOf(Math.max(...expected[i]!));
    assert.is(Number(row.label), best, `batch row ${i}: label`);
  });
});

test('pyml serve answers V2 REST requests with the reference values', async () => {
  const child = spawn(process.execPath, [PYML_BIN, 'serve', image, '--grpc', '127.0.0.1:0', '--http', '127.0.0.1:0'], {
    env: { ...process.env, ...testEnv() }, stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stderr = '';
  child.stderr.on('data', (d) => (stderr += d));
  try {
    const url = await new Promise<string>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`pyml serve not ready in 90 s: ${stderr}`)), 90_000);
      createInterface({ input: child.stdout }).on('line', (line) => {
        const m = /HTTP (http:\/\/127\.0\.0\.1:\d+)/.exec(line);
        if (m) { clearTimeout(timer); resolve(m[1]!); }
      });
      child.on('exit', (code) => reject(new Error(`pyml serve exited with ${code}: ${stderr}`)));
    });
    // Waits for the model itself, not just the server.
    for (let i = 0; i < 120; i++) {
      if ((await fetch(`${url}/v2/models/iris-gbt/ready`)).ok) break;
      await new Promise((r) => setTimeout(r, 500));
    }
    const sample = await readFile(path.join(project, 'sample.json'), 'utf8');
    const res = await fetch(`${url}/v2/models/iris-gbt/infer`, { method: 'POST', body: sample, headers: { 'content-type': 'application/json' } });
    assert.is(res.status, 200, await res.clone().text());
    const body = (await res.json()) as { outputs: { name: string; data: number[] }[] };
    assertClose(body.outputs.find((o) => o.name === 'probabilities')!.data, reference.probabilities.slice(0, 4).flat(), 'served probabilities');
    const bad = await fetch(`${url}/v2/models/iris-gbt/infer`, { method: 'POST', body: JSON.stringify({ inputs: [{ name: 'input', datatype: 'FP32', shape: [1, 3], data: [1, 2, 3] }] }) });
    assert.is(bad.status, 400, 'a wrong shape is a client error, not a crash');
    assert.ok((await fetch(`${url}/v2/models/iris-gbt/ready`)).ok, 'still serving after a bad request');
  } finally {
    child.kill('SIGTERM');
    await new Promise((r) => child.once('exit', r));
  }
});

test('a corrupt or unsupported model fails the build, naming the plugin, the file and the field', async () => {
  const original = await readFile(modelFile, 'utf8');
  const cases: [string, (m: any) => void, RegExp][] = [
    ['feature out of range', (m) => { m.learner.gradient_booster.model.trees[2].split_indices[0] = 9; }, /\[plugin xgboost-json\] describeWeights: model\.json: trees\[2\]: node 0 splits on feature 9, but the model has 4/],
    ['objective', (m) => { m.learner.objective.name = 'rank:pairwise'; }, /learner\.objective\.name "rank:pairwise" is not supported/],
    ['missing array', (m) => { delete m.learner.gradient_booster.model.trees[0].left_children; }, /trees\[0\]\.left_children is missing/],
  ];
  try {
    for (const [what, edit, expected] of cases) {
      const m = JSON.parse(original);
      edit(m);
      await writeFile(modelFile, JSON.stringify(m));
      const r = await pyml(['build', project, '--out', path.join(work, 'bad')]);
      assert.is(r.code, 1, `${what}: ${r.stdout}${r.stderr}`);
      assert.match(r.stderr, expected, what);
    }
  } finally {
    await writeFile(modelFile, original);
  }
});

test.run();
