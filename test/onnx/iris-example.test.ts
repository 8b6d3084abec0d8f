import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { tensor, contractKindOf, type InitContext, type DataType } from '@pyml/contract';
import onnxAdapterFactory from '@pyml/plugin-onnx/adapter';
import { makeIrisModel, parseIris, IRIS_CSV, SPECIES } from '../../examples/onnx-iris/make-model.ts';
import Iris from '../../examples/onnx-iris/src/model.ts';
import { IRIS_DIR, IRIS_MODEL, adapterEnv } from './helpers.ts';

async function irisContext(): Promise<InitContext> {
  const adapter = await onnxAdapterFactory(adapterEnv(join(IRIS_DIR, 'weights')));
  return { ...adapterEnv(join(IRIS_DIR, 'weights')), adapter: <T>() => adapter as T };
}

test('make-model reproduces the committed weights/model.onnx byte for byte', () => {
  const committed = readFileSync(IRIS_MODEL);
  const made = makeIrisModel();
  assert.is(made.length, committed.length);
  assert.ok(Buffer.from(made).equals(committed), 'generated model differs from the committed one');
  assert.ok(Buffer.from(makeIrisModel()).equals(Buffer.from(made)), 'two runs differ');
});

test('data/iris.csv is the 150-row iris set, 50 per species', () => {
  const { rows, y } = parseIris(readFileSync(IRIS_CSV, 'utf8'));
  assert.is(rows, 150);
  for (let c = 0; c < SPECIES.length; c++) assert.is(y.filter((v) => v === c).length, 50);
});

test('the example model classifies the training set well and answers sample.json', async () => {
  assert.is(contractKindOf(Iris), 'tensor');
  const model = new Iris();
  await model.init(await irisContext());

  const { x, y, rows } = parseIris(readFileSync(IRIS_CSV, 'utf8'));
  const out = await model.predict({ input: tensor('FP32', [rows, 4], x) });
  const labels = out.label.data as BigInt64Array;
  let correct = 0;
  for (let i = 0; i < rows; i++) if (Number(labels[i]) === y[i]) correct++;
  assert.ok(correct / rows >= 0.95, `training accuracy ${correct / rows}`);
  const p = out.probabilities.data as Float32Array;
  for (let i = 0; i < rows; i++) assert.ok(Math.abs(p[i * 3] + p[i * 3 + 1] + p[i * 3 + 2] - 1) < 1e-5);

  const sample = JSON.parse(readFileSync(join(IRIS_DIR, 'sample.json'), 'utf8')) as { inputs: { name: string; datatype: DataType; shape: number[]; data: number[] }[] };
  const inputs = Object.fromEntries(sample.inputs.map((i) => [i.name, tensor(i.datatype, i.shape, i.data)]));
  const answer = await model.predict(inputs);
  assert.equal([...(answer.label.data as BigInt64Array)], [0n, 2n]); // setosa, virginica
});

test('sample.csv has an id column and the four feature columns', () => {
  const [header, ...rows] = readFileSync(join(IRIS_DIR, 'sample.csv'), 'utf8').trim().split('\n');
  assert.is(header, 'id,sepal_length,sepal_width,petal_length,petal_width');
  assert.ok(rows.length >= 2);
  for (const r of rows) assert.is(r.split(',').filter((c) => c !== '' && Number.isFinite(Number(c))).length, 5);
});

test.run();
