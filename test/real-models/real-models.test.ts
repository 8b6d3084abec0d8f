import { copyFile, mkdir, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { DuckDBInstance } from '@duckdb/node-api';
import * as ort from 'onnxruntime-node';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { parseJson, pyml } from '../helpers/cli.ts';
import { tempDir } from '../helpers/project.ts';
import { type Served, http, startServe } from '../serve/fixtures.ts';
import { REAL_MODELS, type RealModel, type RequestTensor, packageFolder } from './catalog.ts';
import { type ReferenceTensor, tfjsReference } from './tfjs-reference.ts';

/**
 * Models that public npm packages ship, built unchanged: the signature pyml infers must be the model's own, and
 * `pyml predict`, `pyml serve` (REST) and, where the model is batchable, `pyml batch` must answer as the runtime
 * called in-process does. Models with state inputs, a scalar input or a batch axis that is not first are served
 * one call at a time (the batcher declines them) and each concurrent caller gets its own answer.
 */

interface Output { name: string; datatype: string; shape: number[]; data: (number | string)[] }

/**
 * Element-wise closeness: |a − b| ≤ 1e-5 · max(1, |b|), and the same shape; strings (BYTES) must be equal.
 * Returns the largest difference.
 */
function assertClose(actual: Output, expected: { dims: readonly number[]; data: ArrayLike<number | string> }, what: string): number {
  assert.equal(actual.shape, [...expected.dims], `${what}: shape`);
  assert.is(actual.data.length, expected.data.length, `${what}: element count`);
  let worst = 0;
  for (let i = 0; i < actual.data.length; i++) {
    if (typeof expected.data[i] === 'string') {
      if (actual.data[i] !== expected.data[i]) assert.unreachable(`${what}: element ${i} is ${JSON.stringify(actual.data[i])}, the in-process runtime gives ${JSON.stringify(expected.data[i])}`);
      continue;
    }
    const want = Number(expected.data[i]);
    const diff = Math.abs(Number(actual.data[i]) - want);
    if (!(diff <= 1e-5 * Math.max(1, Math.abs(want)))) assert.unreachable(`${what}: element ${i} is ${actual.data[i]}, the in-process runtime gives ${want}`);
    worst = Math.max(worst, diff);
  }
  return worst;
}

const workDir = await tempDir('pyml-real-models-');
const images = new Map<string, string>();
const sessions = new Map<string, ort.InferenceSession>();

function feeds(tensors: RequestTensor[]): Record<string, ort.Tensor> {
  return Object.fromEntries(tensors.map((t) => {
    if (t.datatype === 'BYTES') return [t.name, new ort.Tensor('string', t.data as string[], t.shape)];
    const data = t.data as number[];
    return [t.name, t.datatype === 'INT64'
      ? new ort.Tensor('int64', BigInt64Array.from(data.map(BigInt)), t.shape)
      : new ort.Tensor(t.datatype === 'INT32' ? 'int32' : 'float32', t.datatype === 'INT32' ? Int32Array.from(data) : Float32Array.from(data), t.shape)];
  }));
}

/** The model's answer from its own runtime in this process (onnxruntime-node, or TF.js): the reference. */
async function inProcess(model: RealModel, request: RequestTensor[]): Promise<Record<string, ReferenceTensor>> {
  const folder = packageFolder(model.package);
  if (model.framework === 'tfjs') return tfjsReference(join(folder, model.files[0]), request, model.signature.outputs.map((o) => o.name), { flags: model.tfjsFlags, backend: model.tfjsBackend });
  let session = sessions.get(model.name);
  if (!session) {
    session = await ort.InferenceSession.create(join(folder, model.files[0]));
    sessions.set(model.name, session);
  }
  const outputs = await session.run(feeds(request));
  return Object.fromEntries(Object.entries(outputs).map(([name, t]) => [name, { dims: [...t.dims], data: t.data as Float32Array }]));
}

function compareAll(outputs: Output[], reference: Record<string, ReferenceTensor>, model: RealModel, via: string): void {
  assert.equal(outputs.map((o) => o.name).sort(), model.signature.outputs.map((o) => o.name).sort(), `${model.name} via ${via}: output names`);
  for (const o of outputs) assertClose(o, reference[o.name], `${model.name} via ${via}, output '${o.name}'`);
}

test.before(async () => {
  for (const model of REAL_MODELS) {
    const project = join(workDir, model.name);
    // The files as shipped: an ONNX file in weights/, a TF.js manifest and its shards together in weights/model/.
    const into = model.framework === 'tfjs' ? join(project, 'weights', model.weights) : join(project, 'weights');
    await mkdir(into, { recursive: true });
    const folder = packageFolder(model.package);
    for (const file of model.files) await copyFile(join(folder, file), join(into, file.split('/').pop()!));
    await writeFile(join(project, 'pyml.config.json'), JSON.stringify({
      name: model.name, version: '1.0.0', weights: [`./weights/${model.weights}`], plugins: [model.framework],
    }));
    const out = join(workDir, `${model.name}.image`);
    const built = await pyml(['build', project, '--out', out, '--json']);
    assert.is(built.code, 0, `pyml build of ${model.name} (${model.what}) failed:\n${built.stderr}`);
    images.set(model.name, out);
  }
});

test.after(async () => {
  for (const session of sessions.values()) await session.release();
  await rm(workDir, { recursive: true, force: true });
});

for (const model of REAL_MODELS) {
  test(`${model.name}: the inferred signature is the model's own`, async () => {
    const r = await pyml(['inspect', 'image', images.get(model.name)!, '--json']);
    const signature = parseJson<{ signature: RealModel['signature'] }>(r).signature;
    assert.equal(signature, model.signature);
  });

  test(`${model.name}: pyml predict answers as its runtime does in-process`, async () => {
    const request = model.request(0);
    const input = join(workDir, `${model.name}.request.json`);
    await writeFile(input, JSON.stringify({ inputs: request }));
    const r = await pyml(['predict', images.get(model.name)!, '--input', input, '--json']);
    const outputs = parseJson<{ outputs: Output[] }>(r).outputs;
    compareAll(outputs, await inProcess(model, request), model, 'pyml predict');
  });
}

test('pyml serve: every model over REST, and concurrent callers each get their own answer', async () => {
  let served: Served | undefined;
  try {
    served = await startServe([...images.values(), '--runner', 'embedded']);
    for (const m of served.ready.models) assert.is(m.state, 'ready', `${m.name}: ${m.error}`);
    for (const model of REAL_MODELS) {
      // Four different requests at once: mergeable ones may be batched, the others must not be merged along a
      // wrong axis; either way each answer is the in-process answer to that caller's request.
      const answers = await Promise.all([0, 1, 2, 3].map((v) => http(served!.ready.http, `/v2/models/${model.name}/infer`, { inputs: model.request(v) })));
      for (const [v, answer] of answers.entries()) {
        assert.is(answer.status, 200, `${model.name}, request ${v}: ${answer.text.slice(0, 500)}`);
        compareAll((answer.body as { outputs: Output[] }).outputs, await inProcess(model, model.request(v)), model, `pyml serve REST, request ${v}`);
      }
    }
  } finally {
    await served?.stop();
  }
});

for (const model of REAL_MODELS.filter((m) => m.batchQuery)) {
  test(`${model.name}: pyml batch gives each row the in-process answer`, async () => {
    const db = join(workDir, `${model.name}.duckdb`);
    const r = await pyml(['batch', images.get(model.name)!, '--query', model.batchQuery!, '--into', 'predictions', '--db', db, '--keep', 'id', '--json']);
    assert.is(r.code, 0, r.stderr);
    const instance = await DuckDBInstance.create(db);
    const connection = await instance.connect();
    try {
      const rows = (await connection.runAndReadAll('SELECT * FROM predictions ORDER BY id')).getRowObjectsJS() as Record<string, unknown>[];
      assert.is(rows.length, 4);
      for (const row of rows) {
        const v = Number(row.id);
        const reference = await inProcess(model, model.request(v));
        for (const spec of model.signature.outputs) {
          const ref = reference[spec.name];
          const flat = (row[spec.name] as unknown[]).flat(8) as number[];
          assertClose({ name: spec.name, datatype: spec.dtype, shape: [1, ...ref.dims.slice(1)], data: flat }, ref, `${model.name} via pyml batch, row ${v}, output '${spec.name}'`);
        }
      }
    } finally {
      connection.closeSync();
      instance.closeSync();
    }
  });
}

test('a model with a scalar input is refused by pyml batch with a message naming the input', async () => {
  const model = REAL_MODELS.find((m) => m.name === 'silero-vad-v5')!;
  const r = await pyml(['batch', images.get(model.name)!, '--query', 'SELECT 1 AS input', '--into', 'p', '--db', join(workDir, 'refused.duckdb')]);
  // README's exit codes: rows the model's signature rejects are a failure while running (1), as for CSV rows.
  assert.is(r.code, 1, `exit ${r.code}: ${r.stderr}`);
  assert.match(r.stderr, "'sr' has shape []; batch needs a free first (row) dimension");
});

test.run();
