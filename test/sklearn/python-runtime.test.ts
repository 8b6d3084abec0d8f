/**
 * sklearn({ runtime }): a pickle the ONNX converter refuses runs in Python with scikit-learn itself (the image
 * carries this machine's Debian python3-sklearn), under 'auto' (the default) and 'python'; under 'onnx' it stays a
 * build error naming the step. Pickles are fitted by test/sklearn/fit-estimators.py on the generated mixed frame
 * (strings, NaNs, integer columns, unseen categories); scikit-learn's own predict / predict_proba on those rows is
 * the reference, and pyml predict, pyml serve and pyml batch must equal it bit for bit (JSON and Parquet carry
 * float64 exactly).
 */
import { existsSync } from 'node:fs';
import { copyFile, mkdir, readFile, rm, symlink, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { DuckDBInstance } from '@duckdb/node-api';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import sklearn, { preparePickle } from '@pyml/plugin-sklearn';
import { parseJson, pyml, REPO, runProcess } from '../helpers/cli.ts';
import { tempDir } from '../helpers/project.ts';
import { type Served, http, startServe } from '../serve/fixtures.ts';

const PYTHON = '/usr/bin/python3';
type Value = number | string;
interface Expected { kind: 'classifier' | 'regressor'; predict: Value[]; probability_columns?: string[]; proba?: number[][] }
interface Spec { name: string; dtype: string; shape: number[] }
type Outputs = { name: string; data: Value[] }[];

let work: string;

test.before(async () => {
  if (!existsSync(PYTHON)) throw new Error(`the sklearn tests need ${PYTHON} with python3-sklearn and python3-onnx (npm run setup)`);
  work = await tempDir('pyml-sklearn-python-');
  const r = await runProcess(PYTHON, [path.join(REPO, 'test/sklearn/fit-estimators.py'), work, 'unsupported-quantile', 'unsupported-function', 'pipeline-logistic-mixed']);
  assert.is(r.code, 0, `fit-estimators.py failed (python3-sklearn installed?): ${r.stderr}`);
});

test.after(async () => { await rm(work, { recursive: true, force: true }); });

async function caseFiles(name: string) {
  const dir = path.join(work, name);
  const expected = JSON.parse(await readFile(path.join(dir, 'expected.json'), 'utf8')) as Expected;
  const frame = JSON.parse(await readFile(path.join(dir, 'frame.json'), 'utf8')) as Record<string, Value[]>;
  return { dir, expected, frame };
}

/** scikit-learn's results as the columns pyml serves: label + probability_<class>, or prediction. */
function reference(expected: Expected): Record<string, Value[]> {
  if (expected.kind === 'regressor') return { prediction: expected.predict };
  return {
    label: expected.predict,
    ...Object.fromEntries(expected.probability_columns!.map((c, k) => [c, expected.proba!.map((row) => row[k]!)])),
  };
}

/** A project around a copy of the case's pickle, one per options (`tag`), built into its own image. */
async function build(name: string, options: object, tag: string): Promise<{ image: string; signature: { inputs: Spec[]; outputs: Spec[] }; code: number; stderr: string }> {
  const dir = path.join(work, `${name}-${tag}`);
  await mkdir(dir, { recursive: true });
  await copyFile(path.join(work, name, 'model.pkl'), path.join(dir, 'model.pkl'));
  await writeFile(path.join(dir, 'pyml.config.ts'), [
    "import { defineConfig } from '@pyml/core';",
    "import sklearn from '@pyml/plugin-sklearn';",
    `export default defineConfig({ name: ${JSON.stringify(name)}, version: '1.0.0', weights: ['./model.pkl'], plugins: [sklearn(${JSON.stringify(options)})] });`,
    '',
  ].join('\n'));
  if (!existsSync(path.join(dir, 'node_modules'))) await symlink(path.join(REPO, 'node_modules'), path.join(dir, 'node_modules'));
  const image = path.join(dir, 'oci');
  const r = await pyml(['build', dir, '--out', image, '--json']);
  if (r.code !== 0) return { image, signature: { inputs: [], outputs: [] }, code: r.code, stderr: r.stderr };
  return { image, signature: parseJson<{ signature: { inputs: Spec[]; outputs: Spec[] } }>(r).signature, code: 0, stderr: r.stderr };
}

/** The case's rows as a V2 request, each column with the dtype of the built signature. */
function request(frame: Record<string, Value[]>, inputs: Spec[]) {
  return { inputs: inputs.map((s) => ({ name: s.name, datatype: s.dtype, shape: [frame[s.name]!.length], data: frame[s.name] })) };
}

const byName = (outputs: Outputs) => Object.fromEntries(outputs.map((o) => [o.name, o.data]));

async function predict(image: string, body: object): Promise<Record<string, Value[]>> {
  const input = path.join(path.dirname(image), `${path.basename(image)}-request.json`);
  await writeFile(input, JSON.stringify(body));
  const r = await pyml(['predict', image, '--input', input, '--json']);
  assert.is(r.code, 0, r.stderr);
  return byName(parseJson<{ outputs: Outputs }>(r).outputs);
}

const MIXED_INPUTS = [
  { name: 'age', dtype: 'FP64' }, { name: 'income', dtype: 'FP64' }, { name: 'city', dtype: 'BYTES' },
  { name: 'plan', dtype: 'BYTES' }, { name: 'rooms', dtype: 'FP64' }, { name: 'score', dtype: 'FP64' },
].map((s) => ({ ...s, shape: [-1] }));

let quantile: { image: string; signature: { inputs: Spec[]; outputs: Spec[] } };

test("runtime 'auto' (default): a Pipeline with a QuantileTransformer builds for Python, and inspect says why", async () => {
  const built = await build('unsupported-quantile', { workers: 2 }, 'auto');
  assert.is(built.code, 0, built.stderr);
  quantile = built;
  assert.equal(built.signature.inputs, MIXED_INPUTS, 'strings read by the OneHotEncoder are BYTES, the rest FP64');
  assert.equal(built.signature.outputs.map((o) => `${o.name}:${o.dtype}`), ['label:BYTES', 'probability_high:FP64', 'probability_low:FP64', 'probability_mid:FP64']);
  const text = await pyml(['inspect', 'image', built.image]);
  assert.is(text.code, 0, text.stderr);
  assert.match(text.stdout, "model.pkl  3");
  assert.match(text.stdout, "sklearn-pickle  runtime=python why=pipeline.steps[0] 'pre' → ColumnTransformer.transformers[0] 'num' → QuantileTransformer does not convert to ONNX");
  const json = parseJson<{ weights: { name: string; format: string; details: Record<string, string> }[]; deps: { name: string }[] }>(await pyml(['inspect', 'image', built.image, '--json']));
  assert.equal(json.weights.map((w) => [w.name, w.format, w.details.runtime]), [['model.pkl', 'sklearn-pickle', 'python']], 'the pickle ships as it is');
  assert.ok(json.deps.some((d) => d.name === 'python3-sklearn'), 'Debian python3-sklearn is in the image');
  assert.not.ok(json.deps.some((d) => d.name === 'onnxruntime-node'), 'no onnxruntime-node without an ONNX model');
});

test('pyml predict: the Python runtime answers what scikit-learn computes, bit for bit', async () => {
  const { expected, frame } = await caseFiles('unsupported-quantile');
  assert.equal(await predict(quantile.image, request(frame, quantile.signature.inputs)), reference(expected));
});

test('pyml serve: four concurrent callers each get scikit-learn\'s answer for their rows, bit for bit', async () => {
  const { expected, frame } = await caseFiles('unsupported-quantile');
  const want = reference(expected);
  let served: Served | undefined;
  try {
    served = await startServe([quantile.image, '--runner', 'embedded']);
    const base = served.ready.http;
    // Four slices of the rows, sent at once: each answer is its own rows' (the batcher may merge them).
    const slices = [0, 1, 2, 3].map((k) => [k * 100, k === 3 ? expected.predict.length : (k + 1) * 100] as const);
    const answers = await Promise.all(slices.map(([from, to]) => {
      const rows = Object.fromEntries(Object.entries(frame).map(([c, v]) => [c, v.slice(from, to)]));
      return http(base, '/v2/models/unsupported-quantile/infer', request(rows, quantile.signature.inputs));
    }));
    answers.forEach((a, k) => {
      assert.is(a.status, 200, a.text);
      const [from, to] = slices[k]!;
      const got = byName((a.body as { outputs: Outputs }).outputs);
      assert.equal(got, Object.fromEntries(Object.entries(want).map(([c, v]) => [c, v.slice(from, to)])), `caller ${k}`);
    });
  } finally {
    await served?.stop();
  }
});

/**
 * A DuckDB literal of a frame value of the given dtype. Numbers go as strings cast to DOUBLE: a bare literal with
 * 17 digits is read as a DECIMAL first, whose cast to DOUBLE can be off by an ulp.
 */
function sqlValue(v: Value, dtype: string): string {
  return dtype === 'BYTES' ? `'${String(v).replaceAll("'", "''")}'` : `'${v}'::DOUBLE`;
}

test('pyml batch: the same rows from DuckDB give the same values as pyml predict and scikit-learn, bit for bit', async () => {
  const { expected, frame } = await caseFiles('unsupported-quantile');
  const specs = quantile.signature.inputs;
  const n = expected.predict.length;
  const rows = Array.from({ length: n }, (_, i) => `(${i}, ${specs.map((s) => sqlValue(frame[s.name]![i]!, s.dtype)).join(', ')})`);
  const query = `SELECT * FROM (VALUES ${rows.join(', ')}) t(id, ${specs.map((s) => s.name).join(', ')}) ORDER BY id`;
  const db = path.join(work, 'batch.duckdb');
  const r = await pyml(['batch', quantile.image, '--query', query, '--into', 'scores', '--db', db, '--keep', 'id', '--json']);
  assert.is(r.code, 0, r.stderr);
  const instance = await DuckDBInstance.create(db);
  const connection = await instance.connect();
  let got: Record<string, Value[]>;
  try {
    const table = (await connection.runAndReadAll('SELECT * FROM scores ORDER BY id')).getRowObjectsJS() as Record<string, Value>[];
    got = Object.fromEntries(quantile.signature.outputs.map((o) => [o.name, table.map((row) => row[o.name]!)]));
  } finally {
    connection.closeSync();
    instance.closeSync();
  }
  const online = await predict(quantile.image, request(frame, specs));
  assert.equal(got, online, 'batch equals predict');
  assert.equal(got, reference(expected), 'batch equals scikit-learn');
});

test("runtime 'auto': a FunctionTransformer in a ColumnTransformer's Pipeline, in front of a regressor", async () => {
  const built = await build('unsupported-function', {}, 'auto');
  assert.is(built.code, 0, built.stderr);
  assert.equal(built.signature.inputs, MIXED_INPUTS);
  assert.equal(built.signature.outputs, [{ name: 'prediction', dtype: 'FP64', shape: [-1] }]);
  const { expected, frame } = await caseFiles('unsupported-function');
  assert.equal(await predict(built.image, request(frame, built.signature.inputs)), reference(expected));
});

test("runtime 'python' on a Pipeline that converts: the same signature as its ONNX build, scikit-learn's values bit for bit", async () => {
  const { dir, expected, frame } = await caseFiles('pipeline-logistic-mixed');
  const options = { python: PYTHON, cacheDir: path.join(work, '.cache'), displayPath: 'model.pkl' };
  const onnx = await preparePickle(path.join(dir, 'model.pkl'), { ...options, runtime: 'auto' });
  const python = await preparePickle(path.join(dir, 'model.pkl'), { ...options, runtime: 'python' });
  assert.is(onnx.runtime, 'onnx', "'auto' converts a Pipeline whose every step converts");
  assert.is(python.runtime, 'python');
  assert.equal(python.signature, onnx.signature, 'one signature whichever runtime serves the pickle');
  const built = await build('pipeline-logistic-mixed', { runtime: 'python' }, 'python');
  assert.is(built.code, 0, built.stderr);
  assert.equal(built.signature, onnx.signature);
  assert.equal(await predict(built.image, request(frame, built.signature.inputs)), reference(expected));
});

test("runtime 'onnx': a step the converter does not support is a build error naming the step, its path and runtime: 'python'", async () => {
  const r = await build('unsupported-quantile', { runtime: 'onnx' }, 'onnx');
  assert.is(r.code, 1, r.stderr);
  assert.match(r.stderr, /model\.pkl/);
  assert.match(r.stderr, "pipeline.steps[0] 'pre' → ColumnTransformer.transformers[0] 'num' → QuantileTransformer");
  assert.match(r.stderr, /not supported by the ONNX converter yet/);
  assert.match(r.stderr, "sklearn({ runtime: 'python' })");
  assert.not.ok(existsSync(r.image), 'no image written');
});

test('sklearn({ runtime, workers, packages }): bad values are refused naming the option', () => {
  assert.throws(() => sklearn({ runtime: 'tf' as never }), /sklearn\(\{ runtime \}\): expected 'onnx', 'python', 'auto', got "tf"/);
  assert.throws(() => sklearn({ workers: 0 }), /sklearn\(\{ workers \}\): expected a whole number/);
  assert.throws(() => sklearn({ packages: ['python3-scipy; rm -rf /'] }), /sklearn\(\{ packages \}\)/);
});

test.run();
