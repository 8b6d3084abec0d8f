/**
 * @pyml/plugin-tfjs end to end: the example's layers model (and a graph-format model) built into images, run once
 * by `pyml predict` (the image's own entrypoint, WASM backend from the deps layer) and compared with in-process
 * TF.js predictions on the same backend; broken model directories are build errors naming the file.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { readFile, rm, unlink, writeFile } from 'node:fs/promises';
import path from 'node:path';
import * as tf from '@tensorflow/tfjs';
import '@tensorflow/tfjs-backend-wasm';
import { initBackend, wasmDir } from '@pyml/plugin-tfjs/adapter';
import { loadTfjsModel } from '../../plugins/tfjs/src/load-model.ts';
import type { Tensor } from '@pyml/contract';
import { pyml, parseJson, REPO, runProcess } from '../helpers/cli.ts';
import { copyExample, tempDir } from '../helpers/project.ts';
import { DuckDBInstance } from '@duckdb/node-api';
import { writeGraphModel, writeTwoHeadGraphModel, writeTwoHeadLayersModel, type TwoHeadOptions } from './make-graph-model.ts';

const example = path.join(REPO, 'examples/tfjs-iris');
interface V2 { outputs: { name: string; datatype: string; shape: number[]; data: number[] }[] }
let work: string;

/** 150 iris rows as one FP32 [150, 4] request. */
async function irisRows(): Promise<number[]> {
  const lines = (await readFile(path.join(REPO, 'examples/onnx-iris/data/iris.csv'), 'utf8')).trim().split('\n').slice(1);
  return lines.flatMap((l) => l.split(',').slice(0, 4).map(Number));
}

async function inProcess(dir: string, input: string, rows: number[], backend: 'wasm' | 'cpu') {
  await initBackend(backend, wasmDir());
  const session = await loadTfjsModel(dir);
  try {
    return await session.run({ [input]: { dtype: 'FP32', shape: [rows.length / 4, 4], data: Float32Array.from(rows) } as Tensor });
  } finally {
    session.release();
  }
}

async function servedBy(oci: string, input: string, rows: number[]): Promise<V2> {
  const request = path.join(work, `request-${path.basename(oci)}.json`);
  await writeFile(request, JSON.stringify({ inputs: [{ name: input, datatype: 'FP32', shape: [rows.length / 4, 4], data: rows }] }));
  const r = await pyml(['predict', oci, '--input', request, '--json']);
  assert.is(r.code, 0, r.stderr);
  return parseJson<V2>(r);
}

test.before(async () => { work = await tempDir('pyml-tfjs-'); });
test.after(async () => { await rm(work, { recursive: true, force: true }); });

test('make-model.ts reproduces the committed model directory byte for byte', async () => {
  const r = await runProcess(process.execPath, ['--import', 'tsx', path.join(example, 'make-model.ts'), `${work}/made`]);
  assert.is(r.code, 0, r.stderr);
  for (const f of ['model.json', 'weights.bin']) {
    assert.ok((await readFile(`${work}/made/${f}`)).equals(await readFile(path.join(example, 'weights/model', f))), `${f} identical`);
  }
});

test('layers model: signature inferred, WASM layer shipped, served predictions equal in-process TF.js', async () => {
  const b = await pyml(['build', example, '--out', `${work}/layers`, '--json']);
  assert.is(b.code, 0, b.stderr);
  const built = parseJson<{ signature: unknown; parts: { part: string; name: string }[] }>(b);
  assert.equal(built.signature, { inputs: [{ name: 'hidden_input', dtype: 'FP32', shape: [-1, 4] }], outputs: [{ name: 'probabilities', dtype: 'FP32', shape: [-1, 3] }] });
  assert.ok(built.parts.some((p) => p.part === 'deps' && p.name === 'tfjs-backend-wasm'));
  const i = await pyml(['inspect', 'image', `${work}/layers`, '--json']);
  const deps = parseJson<{ deps: { name: string; version: string; license?: string }[] }>(i).deps;
  for (const name of ['@tensorflow/tfjs-core', '@tensorflow/tfjs-layers', '@tensorflow/tfjs-backend-wasm']) {
    assert.ok(deps.some((d) => d.name === name && d.version && d.license), `deps manifest lists ${name}`);
  }

  const rows = await irisRows();
  const served = (await servedBy(`${work}/layers`, 'hidden_input', rows)).outputs.find((o) => o.name === 'probabilities')!;
  assert.equal(served.shape, [150, 3]);
  const wasm = (await inProcess(path.join(example, 'weights/model'), 'hidden_input', rows, 'wasm')).probabilities!;
  assert.equal(served.data, Array.from(wasm.data as Float32Array), 'bitwise equal to in-process TF.js on the same (WASM) backend');
  const cpu = (await inProcess(path.join(example, 'weights/model'), 'hidden_input', rows, 'cpu')).probabilities!;
  const worst = served.data.reduce((m, v, k) => Math.max(m, Math.abs(v - (cpu.data as Float32Array)[k]!)), 0);
  assert.ok(worst < 1e-5, `within 1e-5 of the CPU backend (max diff ${worst})`);
  // The model is a real classifier: most iris rows get their species.
  const species = (await readFile(path.join(REPO, 'examples/onnx-iris/data/iris.csv'), 'utf8')).trim().split('\n').slice(1).map((l) => ['setosa', 'versicolor', 'virginica'].indexOf(l.split(',')[4]!));
  const correct = species.filter((s, r) => { const p = served.data.slice(r * 3, r * 3 + 3); return p.indexOf(Math.max(...p)) === s; }).length;
  assert.ok(correct >= 135, `accuracy ${correct}/150`);
});

test('PYML_TFJS_BACKEND=cpu in the image runs the bundled CPU backend: equal to in-process TF.js on the CPU backend', async () => {
  const rows = await irisRows();
  const request = path.join(work, 'request-cpu.json');
  await writeFile(request, JSON.stringify({ inputs: [{ name: 'hidden_input', datatype: 'FP32', shape: [150, 4], data: rows }] }));
  const r = await pyml(['predict', `${work}/layers`, '--input', request, '--json'], { env: { PYML_TFJS_BACKEND: 'cpu' } });
  assert.is(r.code, 0, r.stderr);
  const served = parseJson<V2>(r).outputs.find((o) => o.name === 'probabilities')!;
  const cpu = (await inProcess(path.join(example, 'weights/model'), 'hidden_input', rows, 'cpu')).probabilities!;
  assert.equal(served.data, Array.from(cpu.data as Float32Array), 'bitwise equal to in-process TF.js on the CPU backend');
});

test('pyml batch from Parquet gives the in-process TF.js (WASM) predictions for every row', async () => {
  const db = await DuckDBInstance.create(':memory:');
  const conn = await db.connect();
  await conn.run(`COPY (SELECT row_number() OVER () AS id, * FROM read_csv('${path.join(REPO, 'examples/onnx-iris/data/iris.csv')}')) TO '${work}/iris.parquet' (FORMAT parquet)`);
  conn.closeSync();
  const r = await pyml(['batch', `${work}/layers`, '--query',
    `SELECT id, sepal_length::FLOAT a, sepal_width::FLOAT b, petal_length::FLOAT c, petal_width::FLOAT d FROM read_parquet('${work}/iris.parquet')`,
    '--into', 'predictions', '--db', `${work}/out.duckdb`, '--keep', 'id', '--json']);
  assert.is(r.code, 0, r.stderr);
  const out = await (await DuckDBInstance.create(`${work}/out.duckdb`)).connect();
  const rows = (await out.runAndReadAll('SELECT id, probabilities FROM predictions ORDER BY id')).getRowObjectsJS();
  out.closeSync();
  const expected = (await inProcess(path.join(example, 'weights/model'), 'hidden_input', await irisRows(), 'wasm')).probabilities!.data as Float32Array;
  assert.is(rows.length, 150);
  rows.forEach((row, i) => assert.equal((row.probabilities as number[]).map(Number), Array.from(expected.slice(i * 3, i * 3 + 3)), `row ${String(row.id)}`));
});

test('graph model: signature from model.json, served predictions equal in-process TF.js', async () => {
  const dir = await copyExample('tfjs-iris', 'pyml-tfjs-graph-');
  try {
    await rm(path.join(dir, 'weights/model'), { recursive: true });
    writeGraphModel(path.join(dir, 'weights/graph'));
    await writeFile(path.join(dir, 'pyml.config.ts'), (await readFile(path.join(dir, 'pyml.config.ts'), 'utf8')).replace("'./weights/model'", "'./weights/graph'"));
    const b = await pyml(['build', dir, '--out', `${work}/graph`, '--json']);
    assert.is(b.code, 0, b.stderr);
    assert.equal(parseJson<{ signature: unknown }>(b).signature, { inputs: [{ name: 'x', dtype: 'FP32', shape: [-1, 4] }], outputs: [{ name: 'Identity', dtype: 'FP32', shape: [-1, 3] }] });
    const rows = (await irisRows()).slice(0, 40);
    const served = (await servedBy(`${work}/graph`, 'x', rows)).outputs.find((o) => o.name === 'Identity')!;
    const expected = (await inProcess(path.join(dir, 'weights/graph'), 'x', rows, 'wasm')).Identity!;
    assert.equal(served.shape, [10, 3]);
    assert.equal(served.data, Array.from(expected.data as Float32Array));
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

/** A copy of the example project whose weights are one generated two-input, two-output graph model in weights/graph. */
async function twoHeadProject(options: TwoHeadOptions): Promise<string> {
  const dir = await copyExample('tfjs-iris', 'pyml-tfjs-two-');
  await rm(path.join(dir, 'weights/model'), { recursive: true });
  writeTwoHeadGraphModel(path.join(dir, 'weights/graph'), options);
  await writeFile(path.join(dir, 'pyml.config.ts'), (await readFile(path.join(dir, 'pyml.config.ts'), 'utf8')).replace("'./weights/model'", "'./weights/graph'"));
  return dir;
}

const TWO_HEAD_SIGNATURE = {
  inputs: [{ name: 'x', dtype: 'FP32', shape: [-1, 4] }, { name: 'scale', dtype: 'INT32', shape: [-1, 1] }],
  outputs: [{ name: 'probabilities', dtype: 'FP32', shape: [-1, 3] }, { name: 'class', dtype: 'INT32', shape: [-1] }],
};

/** Builds the project, checks its signature, serves 40 iris rows with varied scales and compares with in-process TF.js (WASM). */
async function buildAndServeTwoHead(dir: string, label: string): Promise<void> {
  const b = await pyml(['build', dir, '--out', `${work}/${label}`, '--json']);
  assert.is(b.code, 0, b.stderr);
  assert.equal(parseJson<{ signature: unknown }>(b).signature, TWO_HEAD_SIGNATURE);
  const rows = (await irisRows()).slice(0, 160);
  const scales = Array.from({ length: 40 }, (_, i) => (i % 5) - 1);
  const request = path.join(work, `request-${label}.json`);
  await writeFile(request, JSON.stringify({ inputs: [
    { name: 'x', datatype: 'FP32', shape: [40, 4], data: rows },
    { name: 'scale', datatype: 'INT32', shape: [40, 1], data: scales },
  ] }));
  const r = await pyml(['predict', `${work}/${label}`, '--input', request, '--json']);
  assert.is(r.code, 0, r.stderr);
  const served = new Map(parseJson<V2>(r).outputs.map((o) => [o.name, o]));
  await initBackend('wasm', wasmDir());
  const session = await loadTfjsModel(path.join(dir, 'weights/graph'));
  try {
    const expected = await session.run({
      x: { dtype: 'FP32', shape: [40, 4], data: Float32Array.from(rows) } as Tensor,
      scale: { dtype: 'INT32', shape: [40, 1], data: Int32Array.from(scales) } as Tensor,
    });
    assert.equal(served.get('probabilities')!.shape, [40, 3]);
    assert.equal(served.get('probabilities')!.data, Array.from(expected.probabilities!.data as Float32Array), 'probabilities bitwise equal');
    assert.equal(served.get('class')!.shape, [40]);
    assert.equal(served.get('class')!.data, Array.from(expected.class!.data as Int32Array), 'classes equal');
    assert.ok(new Set(served.get('class')!.data).size > 1, 'the scale input changes the classes');
  } finally {
    session.release();
  }
}

test('graph model with its signature in userDefinedMetadata (TF.js 2.x converters), two inputs and two outputs', async () => {
  const dir = await twoHeadProject({ signature: 'userDefinedMetadata' });
  try {
    await buildAndServeTwoHead(dir, 'graph-metadata');
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

test('graph model without a signature, manifest named tensorflowjs_model.json: dtypes from the graph, shapes from a trial run', async () => {
  const dir = await twoHeadProject({ signature: 'none', manifest: 'tensorflowjs_model.json' });
  try {
    await buildAndServeTwoHead(dir, 'graph-unsigned');
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

test('graph model whose outputs carry no type attributes: the trial run at build time gives dtypes and shapes', async () => {
  const dir = await twoHeadProject({ signature: 'none', typeAttrs: false });
  try {
    const b = await pyml(['build', dir, '--out', `${work}/graph-bare`, '--json']);
    assert.is(b.code, 0, b.stderr);
    assert.equal(parseJson<{ signature: unknown }>(b).signature, TWO_HEAD_SIGNATURE);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

test('functional layers model with two inputs and two outputs, manifest named keras_model.json', async () => {
  const dir = await copyExample('tfjs-iris', 'pyml-tfjs-layers2-');
  try {
    await rm(path.join(dir, 'weights/model'), { recursive: true });
    await writeTwoHeadLayersModel(path.join(dir, 'weights/model'), 'keras_model.json');
    const b = await pyml(['build', dir, '--out', `${work}/layers-two`, '--json']);
    assert.is(b.code, 0, b.stderr);
    assert.equal(parseJson<{ signature: unknown }>(b).signature, {
      inputs: [{ name: 'features', dtype: 'FP32', shape: [-1, 4] }, { name: 'extra', dtype: 'FP32', shape: [-1, 2] }],
      outputs: [{ name: 'scores', dtype: 'FP32', shape: [-1, 3] }, { name: 'amount', dtype: 'FP32', shape: [-1, 1] }],
    });
    const rows = (await irisRows()).slice(0, 40);
    const extra = Array.from({ length: 10 }, (_, i) => [i / 10, 1 - i / 20]).flat();
    const request = path.join(work, 'request-layers-two.json');
    await writeFile(request, JSON.stringify({ inputs: [
      { name: 'features', datatype: 'FP32', shape: [10, 4], data: rows },
      { name: 'extra', datatype: 'FP32', shape: [10, 2], data: extra },
    ] }));
    const r = await pyml(['predict', `${work}/layers-two`, '--input', request, '--json']);
    assert.is(r.code, 0, r.stderr);
    const served = new Map(parseJson<V2>(r).outputs.map((o) => [o.name, o]));
    await initBackend('wasm', wasmDir());
    const session = await loadTfjsModel(path.join(dir, 'weights/model'));
    try {
      const expected = await session.run({
        features: { dtype: 'FP32', shape: [10, 4], data: Float32Array.from(rows) } as Tensor,
        extra: { dtype: 'FP32', shape: [10, 2], data: Float32Array.from(extra) } as Tensor,
      });
      assert.equal(served.get('scores')!.shape, [10, 3]);
      assert.equal(served.get('scores')!.data, Array.from(expected.scores!.data as Float32Array), 'scores bitwise equal');
      assert.equal(served.get('amount')!.shape, [10, 1]);
      assert.equal(served.get('amount')!.data, Array.from(expected.amount!.data as Float32Array), 'amount bitwise equal');
    } finally {
      session.release();
    }
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

test('manifest problems are build errors naming the file and what is missing', async () => {
  const dir = await twoHeadProject({ signature: 'none', manifest: 'exported.json' });
  const model = path.join(dir, 'weights/graph');
  const build = () => pyml(['build', dir, '--out', `${dir}/oci`]);
  try {
    const manifest = JSON.parse(await readFile(path.join(model, 'exported.json'), 'utf8')) as Record<string, unknown>;
    await writeFile(path.join(model, 'exported.json'), JSON.stringify({ ...manifest, weightsManifest: undefined }));
    let r = await build();
    assert.is(r.code, 1, r.stdout + r.stderr);
    assert.match(r.stderr, 'weights/graph/exported.json: weightsManifest is missing');

    await writeFile(path.join(model, 'exported.json'), JSON.stringify(manifest));
    await writeFile(path.join(model, 'copy.json'), JSON.stringify(manifest));
    r = await build();
    assert.is(r.code, 1, r.stdout + r.stderr);
    assert.match(r.stderr, 'weights/graph: copy.json, exported.json all look like TF.js model manifests');
    await unlink(path.join(model, 'copy.json'));

    // No signature, outputs without types, and an input without a shape: nothing can tell the outputs' form.
    const topology = manifest.modelTopology as { node: { name: string; attr: Record<string, unknown> }[] };
    for (const n of topology.node) {
      if (n.name === 'scale') delete n.attr.shape;
      if (n.name === 'probabilities' || n.name === 'class') n.attr = {};
    }
    await writeFile(path.join(model, 'exported.json'), JSON.stringify(manifest));
    r = await build();
    assert.is(r.code, 1, r.stdout + r.stderr);
    assert.match(r.stderr, 'weights/graph/exported.json: graph outputs "probabilities", "class" have no dtype or shape');
    assert.match(r.stderr, 'input "scale" lacks');
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

test('a missing shard and a broken model.json are build errors naming the file', async () => {
  const dir = await copyExample('tfjs-iris', 'pyml-tfjs-bad-');
  try {
    await unlink(path.join(dir, 'weights/model/weights.bin'));
    let r = await pyml(['build', dir, '--out', `${dir}/oci`]);
    assert.is(r.code, 1, r.stdout + r.stderr);
    assert.match(r.stderr, 'weights/model/weights.bin');
    assert.match(r.stderr, 'missing');

    await writeFile(path.join(dir, 'weights/model/model.json'), '{"modelTopology": {"class_name": "Sequential"');
    r = await pyml(['build', dir, '--out', `${dir}/oci`]);
    assert.is(r.code, 1, r.stdout + r.stderr);
    assert.match(r.stderr, 'weights/model/model.json');
    assert.match(r.stderr, 'not valid JSON');
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

test.run();
