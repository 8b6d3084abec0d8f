/**
 * An ONNX model the plugin did not convert (one FP32 [N,4] input, a [N,3] probabilities output and a label, as
 * skl2onnx writes with zipmap=False): the default dataframe model concatenates four columns into the input and
 * splits the probabilities into columns. Served values equal onnxruntime run in-process on the same rows.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { copyFile, mkdir, rm, symlink, writeFile } from 'node:fs/promises';
import path from 'node:path';
import * as ort from 'onnxruntime-node';
import { pyml, parseJson, REPO } from '../helpers/cli.ts';
import { tempDir } from '../helpers/project.ts';

const MODEL = path.join(REPO, 'examples/onnx-iris/weights/model.onnx');
const ROWS = [[5.1, 3.5, 1.4, 0.2], [6.4, 3.2, 4.5, 1.5], [6.7, 3.0, 5.2, 2.3], [5.9, 3.0, 4.2, 1.5]];
let dir: string;

test.before(async () => {
  dir = await tempDir('pyml-sklearn-onnx-');
  await mkdir(path.join(dir, 'weights'));
  await copyFile(MODEL, path.join(dir, 'weights/model.onnx'));
  await symlink(path.join(REPO, 'node_modules'), path.join(dir, 'node_modules'));
  await writeFile(path.join(dir, 'pyml.config.ts'), [
    "import { defineConfig } from '@pyml/core';",
    "import sklearn from '@pyml/plugin-sklearn';",
    "export default defineConfig({ name: 'foreign', version: '1.0.0', weights: ['./weights/model.onnx'], plugins: [sklearn()] });",
    '',
  ].join('\n'));
});
test.after(async () => { await rm(dir, { recursive: true, force: true }); });

test('columns are concatenated into the [N,4] input and a [N,3] output is split into columns', async () => {
  const b = await pyml(['build', dir, '--out', `${dir}/oci`, '--json']);
  assert.is(b.code, 0, b.stderr);
  const { signature, kind } = parseJson<{ kind: string; signature: { inputs: { name: string; dtype: string; shape: number[] }[]; outputs: { name: string; dtype: string }[] } }>(b);
  assert.is(kind, 'dataframe');
  assert.equal(signature.inputs, [0, 1, 2, 3].map((i) => ({ name: `input_${i}`, dtype: 'FP32', shape: [-1] })));
  assert.equal(signature.outputs.map((o) => o.name).sort(), ['label', 'probabilities_0', 'probabilities_1', 'probabilities_2']);

  const request = { inputs: [0, 1, 2, 3].map((j) => ({ name: `input_${j}`, datatype: 'FP32', shape: [ROWS.length], data: ROWS.map((r) => r[j]) })) };
  await writeFile(`${dir}/request.json`, JSON.stringify(request));
  const r = await pyml(['predict', `${dir}/oci`, '--input', `${dir}/request.json`, '--json']);
  assert.is(r.code, 0, r.stderr);
  const served = new Map(parseJson<{ outputs: { name: string; data: number[] }[] }>(r).outputs.map((o) => [o.name, o.data]));

  const session = await ort.InferenceSession.create(MODEL);
  const out = await session.run({ input: new ort.Tensor('float32', Float32Array.from(ROWS.flat()), [ROWS.length, 4]) });
  const probabilities = Array.from(out.probabilities!.data as Float32Array);
  for (let k = 0; k < 3; k++) assert.equal(served.get(`probabilities_${k}`), ROWS.map((_, i) => probabilities[i * 3 + k]), `probabilities_${k}`);
  assert.equal(served.get('label')!.map(Number), Array.from(out.label!.data as BigInt64Array, Number));
});

test.run();
