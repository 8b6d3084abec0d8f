/**
 * Served predictions of converted scikit-learn estimators equal scikit-learn's own: each estimator is fitted and
 * pickled by Debian's python3 (test/sklearn/fit-estimators.py), built into an image by `pyml build` (the plugin
 * converts the pickle to ONNX), and run once by `pyml predict` (the image's own entrypoint and Node).
 * Labels must match exactly; probabilities within 1e-5; regression within 1e-5 relative to max(1, |y|)
 * (trees sum their leaves in float32, as onnxruntime's TreeEnsemble does).
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { existsSync } from 'node:fs';
import { readFile, rm, symlink, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { openImage } from '@pyml/image';
import { pyml, parseJson, REPO, runProcess } from '../helpers/cli.ts';
import { tempDir } from '../helpers/project.ts';

const PYTHON = '/usr/bin/python3';
interface Expected { estimator: string; predict: (number | string)[]; classes?: (number | string)[]; proba?: number[][] }
interface Response { outputs: { name: string; datatype: string; shape: number[]; data: (number | string)[] }[] }

let work: string;

test.before(async () => {
  if (!existsSync(PYTHON)) throw new Error(`the sklearn tests need ${PYTHON} with python3-sklearn and python3-onnx (npm run setup)`);
  work = await tempDir('pyml-sklearn-');
  const r = await runProcess(PYTHON, [path.join(REPO, 'test/sklearn/fit-estimators.py'), work]);
  assert.is(r.code, 0, `fit-estimators.py failed (python3-sklearn installed?): ${r.stderr}`);
});

test.after(async () => { await rm(work, { recursive: true, force: true }); });

/** A project around the case's pickle: pyml.config.ts with the sklearn plugin and no model module. */
async function project(name: string): Promise<string> {
  const dir = path.join(work, name);
  await writeFile(path.join(dir, 'pyml.config.ts'), [
    "import { defineConfig } from '@pyml/core';",
    "import sklearn from '@pyml/plugin-sklearn';",
    `export default defineConfig({ name: ${JSON.stringify(name)}, version: '1.0.0', weights: ['./model.pkl'], plugins: [sklearn()] });`,
    '',
  ].join('\n'));
  if (!existsSync(path.join(dir, 'node_modules'))) await symlink(path.join(REPO, 'node_modules'), path.join(dir, 'node_modules'));
  return dir;
}

const CASES = [
  'logistic-iris', 'logistic-breast_cancer', 'linear-diabetes', 'tree-iris', 'tree-diabetes', 'forest-breast_cancer',
  'forest-diabetes', 'boosting-iris', 'boosting-breast_cancer', 'boosting-diabetes',
];

for (const name of CASES) {
  test(`${name}: served predictions equal scikit-learn's`, async () => {
    const dir = await project(name);
    const expected = JSON.parse(await readFile(path.join(dir, 'expected.json'), 'utf8')) as Expected;
    const built = await pyml(['build', dir, '--out', path.join(dir, 'oci'), '--json']);
    assert.is(built.code, 0, built.stderr);
    const served = await pyml(['predict', path.join(dir, 'oci'), '--input', path.join(dir, 'request.json'), '--json']);
    assert.is(served.code, 0, served.stderr);
    const outputs = new Map(parseJson<Response>(served).outputs.map((o) => [o.name, o]));
    const rows = expected.predict.length;
    if (expected.proba) {
      const label = outputs.get('label');
      assert.ok(label, `label column served (got ${[...outputs.keys()].join(', ')})`);
      assert.equal(label!.shape, [rows]);
      const wrong = expected.predict.flatMap((want, i) => (label!.data[i] === want ? [] : [`row ${i}: ${label!.data[i]} != ${want}`]));
      assert.equal(wrong, [], `${expected.estimator} labels`);
      expected.classes!.forEach((c, k) => {
        const col = outputs.get(`probability_${c}`);
        assert.ok(col, `probability_${c} column served`);
        let worst = 0;
        for (let i = 0; i < rows; i++) worst = Math.max(worst, Math.abs(Number(col!.data[i]) - expected.proba![i]![k]!));
        assert.ok(worst <= 1e-5, `${expected.estimator} probability_${c}: max |served - predict_proba| = ${worst}`);
      });
    } else {
      const col = outputs.get('prediction');
      assert.ok(col, `prediction column served (got ${[...outputs.keys()].join(', ')})`);
      assert.equal(col!.shape, [rows]);
      let worst = 0;
      for (let i = 0; i < rows; i++) {
        const want = Number(expected.predict[i]);
        worst = Math.max(worst, Math.abs(Number(col!.data[i]) - want) / Math.max(1, Math.abs(want)));
      }
      assert.ok(worst <= 1e-5, `${expected.estimator} prediction: max relative error ${worst}`);
    }
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

test('an estimator the converter does not support is a build error naming its class', async () => {
  const dir = await project('unsupported-knn');
  const r = await pyml(['build', dir, '--out', path.join(dir, 'oci')]);
  assert.is(r.code, 1, r.stdout + r.stderr);
  assert.match(r.stderr, /model\.pkl/);
  assert.match(r.stderr, /KNeighborsClassifier/);
  assert.not.ok(existsSync(path.join(dir, 'oci')), 'no image written');
});

test.run();
