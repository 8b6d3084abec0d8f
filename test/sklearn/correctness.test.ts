/**
 * Converted scikit-learn models predict what scikit-learn predicts. Each estimator or Pipeline is fitted and
 * pickled by Debian's python3 (test/sklearn/fit-estimators.py) on a dataset scikit-learn ships (iris, wine,
 * breast_cancer, diabetes) or on a generated mixed frame (strings, NaNs, integer columns, categories never seen
 * in fit), then:
 * - every case: converted by the plugin (convertPickle), its column plan read back from the ONNX file
 *   (dataFramePlan) and run by onnxruntime-node in this process on all the case's rows;
 * - SERVED cases (the unusual graphs, and every kind of column): built into an image by `pyml build` and run
 *   by `pyml predict` (the image's own entrypoint, default dataframe model and onnxruntime-node).
 * Labels must match exactly; probabilities and regression predictions within 1e-5 (absolute). Each case logs its
 * largest difference.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { existsSync } from 'node:fs';
import { mkdir, readFile, rm, symlink, writeFile } from 'node:fs/promises';
import path from 'node:path';
import * as ort from 'onnxruntime-node';
import { openImage } from '@pyml/image';
import { onnxSignature, readOnnxModel } from '@pyml/plugin-onnx';
import { convertPickle, dataFramePlan } from '@pyml/plugin-sklearn';
import { pyml, parseJson, REPO, runProcess } from '../helpers/cli.ts';
import { tempDir } from '../helpers/project.ts';

const PYTHON = '/usr/bin/python3';
type Value = number | string;
interface Expected { estimator: string; kind: 'classifier' | 'regressor'; predict: Value[]; classes?: Value[]; probability_columns?: string[]; proba?: number[][] }
interface Column { name: string; dtype: string }
interface Response { outputs: { name: string; datatype: string; shape: number[]; data: Value[] }[] }

let work: string;

test.before(async () => {
  if (!existsSync(PYTHON)) throw new Error(`the sklearn tests need ${PYTHON} with python3-sklearn and python3-onnx (npm run setup)`);
  work = await tempDir('pyml-sklearn-');
  const r = await runProcess(PYTHON, [path.join(REPO, 'test/sklearn/fit-estimators.py'), work]);
  assert.is(r.code, 0, `fit-estimators.py failed (python3-sklearn installed?): ${r.stderr}`);
});

test.after(async () => { await rm(work, { recursive: true, force: true }); });

const CASES = [
  'logistic-iris', 'logistic-breast_cancer', 'forest-float_labels-breast_cancer', 'linear-diabetes', 'tree-iris',
  'tree-diabetes', 'forest-breast_cancer', 'forest-diabetes', 'boosting-iris', 'boosting-breast_cancer',
  'boosting-diabetes', 'extratrees-wine', 'extratrees-diabetes', 'hgb-iris', 'hgb-breast_cancer', 'hgb-diabetes',
  'ridge-diabetes', 'lasso-diabetes', 'elasticnet-diabetes', 'svc-linear-iris', 'svc-rbf-wine',
  'svc-rbf-breast_cancer', 'svc-noproba-iris', 'svr-rbf-diabetes', 'svr-linear-diabetes', 'knn-iris',
  'knn-distance-wine', 'knn-diabetes', 'mlp-iris', 'mlp-breast_cancer', 'poly-ridge-diabetes', 'nusvc-poly-iris',
  'linearsvc-wine', 'ridgeclassifier-breast_cancer', 'maxabs-lassocv-diabetes', 'huber-diabetes',
  'robust-mlpreg-diabetes', 'pipeline-logistic-mixed', 'pipeline-forest-mixed', 'pipeline-svc-mixed',
  'pipeline-mlp-mixed', 'pipeline-ridge-mixed', 'pipeline-positions-mixed', 'pipeline-hgb-mixed',
  'pipeline-knn-mixed',
];
/**
 * Served through an image as well (a build + predict each, so few: the area's time budget): the SVM coupling Loop,
 * leaf-id trees on float64 thresholds, neighbours, and every kind of column (BYTES, INT64, INT32, FP64 with NaN).
 */
const SERVED = [
  'logistic-iris', 'hgb-breast_cancer', 'svc-rbf-wine', 'knn-distance-wine', 'pipeline-logistic-mixed',
  'pipeline-positions-mixed',
];

async function caseFiles(name: string) {
  const dir = path.join(work, name);
  const expected = JSON.parse(await readFile(path.join(dir, 'expected.json'), 'utf8')) as Expected;
  const frame = JSON.parse(await readFile(path.join(dir, 'frame.json'), 'utf8')) as Record<string, Value[]>;
  const optionsFile = path.join(dir, 'options.json');
  const options = existsSync(optionsFile) ? (JSON.parse(await readFile(optionsFile, 'utf8')) as { columnTypes?: Record<string, string> }) : {};
  return { dir, expected, frame, options };
}

/** Compares result columns with scikit-learn's; returns a one-line summary with the largest difference. */
function compare(name: string, expected: Expected, outputs: Map<string, Value[]>): string {
  const rows = expected.predict.length;
  if (expected.kind === 'regressor') {
    const col = outputs.get('prediction');
    assert.ok(col, `prediction column (got ${[...outputs.keys()].join(', ')})`);
    assert.is(col!.length, rows);
    let worst = 0;
    for (let i = 0; i < rows; i++) worst = Math.max(worst, Math.abs(Number(col![i]) - Number(expected.predict[i])));
    assert.ok(worst <= 1e-5, `${expected.estimator} prediction: max |prediction - predict| = ${worst}`);
    return `${name} ${expected.estimator}: max |prediction - predict| ${worst.toExponential(1)} over ${rows} rows`;
  }
  const label = outputs.get('label');
  assert.ok(label, `label column (got ${[...outputs.keys()].join(', ')})`);
  const wrong = expected.predict.flatMap((want, i) => (label![i] === want ? [] : [`row ${i}: ${label![i]} != ${want}`]));
  assert.equal(wrong, [], `${expected.estimator} labels`);
  if (!expected.proba) {
    assert.equal([...outputs.keys()], ['label'], 'no probability columns without predict_proba');
    return `${name} ${expected.estimator}: ${rows} labels equal (no predict_proba)`;
  }
  let worst = 0;
  // Named by Python (probability_0.0 for a float class).
  expected.probability_columns!.forEach((column, k) => {
    const col = outputs.get(column);
    assert.ok(col, `${column} column (got ${[...outputs.keys()].join(', ')})`);
    for (let i = 0; i < rows; i++) worst = Math.max(worst, Math.abs(Number(col![i]) - expected.proba![i]![k]!));
  });
  assert.ok(worst <= 1e-5, `${expected.estimator}: max |probability - predict_proba| = ${worst}`);
  return `${name} ${expected.estimator}: ${rows} labels equal, max |probability - predict_proba| ${worst.toExponential(1)}`;
}

function ortTensor(column: Column, values: Value[]): ort.Tensor {
  const n = [values.length];
  switch (column.dtype) {
    case 'BYTES': return new ort.Tensor('string', values.map(String), n);
    case 'INT64': return new ort.Tensor('int64', BigInt64Array.from(values.map((v) => BigInt(v))), n);
    case 'INT32': return new ort.Tensor('int32', Int32Array.from(values.map(Number)), n);
    case 'FP64': return new ort.Tensor('float64', Float64Array.from(values.map(Number)), n);
    default: throw new Error(`column ${column.name}: no test feed for ${column.dtype}`);
  }
}

for (const name of CASES) {
  test(`${name}: the converted model run by onnxruntime-node equals scikit-learn`, async () => {
    const { dir, expected, frame, options } = await caseFiles(name);
    const onnxFile = await convertPickle(path.join(dir, 'model.pkl'), { python: PYTHON, cacheDir: path.join(work, '.cache'), displayPath: `${name}/model.pkl`, ...options });
    const plan = dataFramePlan('model.onnx', onnxSignature(await readOnnxModel(onnxFile)).signature, name);
    const feeds: Record<string, ort.Tensor> = {};
    for (const p of plan.inputs) {
      assert.is(p.kind, 'column', 'one input per column');
      if (p.kind !== 'column') continue;
      assert.ok(frame[p.column], `the plan's column ${p.column} is in the case's frame`);
      feeds[p.input] = ortTensor({ name: p.column, dtype: p.dtype }, frame[p.column]!);
    }
    const session = await ort.InferenceSession.create(onnxFile);
    try {
      const out = await session.run(feeds);
      const outputs = new Map(plan.outputs.map((p) => [p.kind === 'column' ? p.column : p.output, Array.from(out[p.output]!.data as ArrayLike<Value | bigint>, (v) => (typeof v === 'bigint' ? Number(v) : v))]));
      console.log(`  in-process ${compare(name, expected, outputs)}`);
    } finally {
      await session.release();
    }
  });
}

/** A project around the case's pickle: pyml.config.ts with the sklearn plugin (and the case's options) and no model module. */
async function project(name: string, options: object): Promise<string> {
  const dir = path.join(work, name);
  await writeFile(path.join(dir, 'pyml.config.ts'), [
    "import { defineConfig } from '@pyml/core';",
    "import sklearn from '@pyml/plugin-sklearn';",
    `export default defineConfig({ name: ${JSON.stringify(name)}, version: '1.0.0', weights: ['./model.pkl'], plugins: [sklearn(${JSON.stringify(options)})] });`,
    '',
  ].join('\n'));
  if (!existsSync(path.join(dir, 'node_modules'))) await symlink(path.join(REPO, 'node_modules'), path.join(dir, 'node_modules'));
  return dir;
}

for (const name of SERVED) {
  test(`${name}: served predictions (pyml build + pyml predict) equal scikit-learn's`, async () => {
    const { expected, frame, options } = await caseFiles(name);
    const dir = await project(name, options);
    const built = await pyml(['build', dir, '--out', path.join(dir, 'oci'), '--json']);
    assert.is(built.code, 0, built.stderr);
    // The rows as a V2 request, each column with the dtype of the built signature (BYTES, INT64, INT32, FP64 with "NaN").
    const inputs = parseJson<{ signature: { inputs: Column[] } }>(built).signature.inputs.map((spec) => {
      assert.ok(frame[spec.name], `the signature's column ${spec.name} is in the case's frame`);
      return { name: spec.name, datatype: spec.dtype, shape: [frame[spec.name]!.length], data: frame[spec.name] };
    });
    await mkdir(dir, { recursive: true });
    await writeFile(path.join(dir, 'request.json'), JSON.stringify({ inputs }));
    const served = await pyml(['predict', path.join(dir, 'oci'), '--input', path.join(dir, 'request.json'), '--json']);
    assert.is(served.code, 0, served.stderr);
    const outputs = parseJson<Response>(served).outputs;
    for (const o of outputs) assert.equal(o.shape, [expected.predict.length], `${o.name} is one value per row`);
    console.log(`  served ${compare(name, expected, new Map(outputs.map((o) => [o.name, o.data])))}`);
  });
}

test('the image ships the converted ONNX, not the pickle, and names the estimator', async () => {
  const image = await openImage(path.join(work, 'logistic-iris', 'oci'));
  const manifest = JSON.parse(String(await image.readFile('/opt/pyml/pyml.json'))) as { kind: string; weights: { files: { name: string }[] }; deps: { name: string; plugin: string }[] };
  assert.equal(manifest.weights.files.map((f) => f.name), ['model.onnx']);
  assert.is(manifest.kind, 'dataframe');
  assert.ok(manifest.deps.some((d) => d.name === 'onnxruntime-node' && d.plugin === 'sklearn'));
  assert.ok(await image.readFile('/opt/pyml/weights/model.onnx'), 'model.onnx in the weights directory');
  assert.not.ok(await image.readFile('/opt/pyml/weights/model.pkl'), 'no pickle in the image');
});

test('the mixed frame arrives as BYTES, INT64 and FP64 columns, and columnTypes declares others', async () => {
  const sig = async (name: string) => {
    const { dir, options } = await caseFiles(name);
    const onnxFile = await convertPickle(path.join(dir, 'model.pkl'), { python: PYTHON, cacheDir: path.join(work, '.cache'), displayPath: name, ...options });
    return Object.fromEntries(onnxSignature(await readOnnxModel(onnxFile)).signature.inputs.map((s) => [s.name, s.dtype]));
  };
  // Strings read by OneHotEncoder; rooms only by an encoder with integer categories; numbers by scalers.
  assert.equal(await sig('pipeline-logistic-mixed'), { age: 'FP64', income: 'FP64', city: 'BYTES', plan: 'BYTES', rooms: 'INT64', score: 'FP64' });
  // Positions: age declared INT32 by columnTypes; remainder passthrough columns are numbers.
  assert.equal(await sig('pipeline-positions-mixed'), { age: 'INT32', income: 'FP64', city: 'BYTES', plan: 'BYTES', rooms: 'FP64', score: 'FP64' });
});

test.run();
