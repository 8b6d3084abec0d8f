import { mkdtemp, readFile, readdir, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as ort from 'onnxruntime-node';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { PYML_BIN, REPO, parseJson, pyml, runProcess } from '../helpers/cli.ts';
import { buildImages } from './fixtures.ts';

/** `pyml predict`: the image's own entrypoint, run once, agrees with onnxruntime in this process. */

let built: Awaited<ReturnType<typeof buildImages>>;

test.before(async () => {
  built = await buildImages(['iris', 'broken', 'frame']);
});

test.after(async () => {
  await built?.cleanup();
});

const SAMPLE = join(REPO, 'examples/onnx-iris/sample.json');

async function expected(): Promise<{ probabilities: number[]; label: number[] }> {
  const sample = JSON.parse(await readFile(SAMPLE, 'utf8')) as { inputs: { shape: number[]; data: number[] }[] };
  const session = await ort.InferenceSession.create(join(REPO, 'examples/onnx-iris/weights/model.onnx'));
  const out = await session.run({ input: new ort.Tensor('float32', Float32Array.from(sample.inputs[0].data), sample.inputs[0].shape) });
  return { probabilities: Array.from(out.probabilities.data as Float32Array), label: Array.from(out.label.data as BigInt64Array, Number) };
}

test('pyml predict on sample.json equals in-process onnxruntime, from a layout and from a tarball', async () => {
  const want = await expected();
  for (const ref of [built.images.iris, `${built.images.iris}.tar`]) {
    const r = await pyml(['predict', ref, '--input', SAMPLE, '--json']);
    assert.is(r.code, 0, r.stderr);
    assert.is(r.stdout.trim().split('\n').length, 1, '--json prints one line');
    const res = parseJson<{ model_name: string; outputs: { name: string; data: number[]; shape: number[] }[] }>(r);
    assert.is(res.model_name, 'iris');
    assert.equal(res.outputs[0].name, 'probabilities');
    assert.equal(res.outputs[0].shape, [2, 3]);
    assert.equal(res.outputs[0].data, want.probabilities);
    assert.equal(res.outputs[1].data, want.label);
  }
  // The rootfs is unpacked once per digest and reused.
  const digest = JSON.parse(await readFile(join(built.images.iris, 'index.json'), 'utf8')).manifests[0].digest as string;
  const cache = process.env.PYML_TEST_CACHE ?? '/tmp/pyml-test-cache';
  const rootfs = join(cache, 'rootfs', digest.replace(':', '-'));
  assert.ok((await readFile(join(rootfs, 'opt/pyml/pyml.json'), 'utf8')).includes('"iris"'));
  // Its files are kept once in the cache's shared store, so other images on the same base add no second Node.
  assert.ok((await stat(join(rootfs, 'usr/local/bin/node'))).nlink >= 2, 'the Node binary is a link to the shared copy');
});

test('pyml predict with a CSV: one column per input of a dataframe model, quoted fields and exact 64-bit integers', async () => {
  const csv = join(built.dir, 'rows.csv');
  await writeFile(csv, 'name,a,n\n"Smith, Jo",1.5,9007199254740993\nAda,-2,0\n"say ""hi""",0.25,-1\n');
  const r = await pyml(['predict', built.images.frame, '--input', csv, '--json']);
  assert.is(r.code, 0, r.stderr);
  const res = parseJson<{ outputs: { name: string; data: unknown[] }[] }>(r);
  assert.equal(res.outputs[0], { name: 'score', datatype: 'FP64', shape: [3], data: [3 + 9007199254740993, -4, -0.5] });
  assert.equal(res.outputs[1].data, ['hi Smith, Jo', 'hi Ada', 'hi say "hi"']);
  const wrong = join(built.dir, 'wrong.csv');
  await writeFile(wrong, 'name,a,n\nAda,two,1\n');
  const w = await pyml(['predict', built.images.frame, '--input', wrong]);
  assert.is(w.code, 1);
  assert.match(w.stderr, /wrong\.csv: row 2, column 'a': "two" is not a number \(FP64\)/);
});

test('pyml predict: bad input names the tensor; CSV columns are checked against the inputs; init failure is reported', async () => {
  const bad = join(built.dir, 'bad.json');
  await writeFile(bad, JSON.stringify({ inputs: [{ name: 'input', datatype: 'FP32', shape: [1, 3], data: [1, 2, 3] }] }));
  const r = await pyml(['predict', built.images.iris, '--input', bad]);
  assert.is(r.code, 1);
  assert.match(r.stderr, /input 'input': expected shape \[-1, 4\], got \[1, 3\]/);
  // The CSV is read as pyml batch reads it: the id column must be named with --keep, as batch asks.
  const csv = await pyml(['predict', built.images.iris, '--input', join(REPO, 'examples/onnx-iris/sample.csv')]);
  assert.is(csv.code, 1);
  assert.match(csv.stderr, /sample\.csv: the CSV's columns do not fit the model's signature/);
  assert.match(csv.stderr, /column 'id' is neither a model input \(input\) nor a --keep column/);
  assert.match(csv.stderr, /--keep id/);
  const broken = await pyml(['predict', built.images.broken, '--input', SAMPLE, '--json']);
  assert.is(broken.code, 1);
  assert.match(parseJson<{ error: { message: string } }>(broken).error.message, /the model failed to start: .*weights are corrupt/);
  const missing = await pyml(['predict', join(built.dir, 'nope'), '--input', SAMPLE]);
  assert.is(missing.code, 2);
  assert.match(missing.stderr, /no such file or directory/);
  const noInput = await pyml(['predict', built.images.iris, '--input', join(built.dir, 'no-request.json')]);
  assert.is(noInput.code, 2);
  assert.match(noInput.stderr, /cannot read --input .*no-request\.json: no such file/);
  const notJson = join(built.dir, 'cut.json');
  await writeFile(notJson, '{"inputs": [');
  const cut = await pyml(['predict', built.images.iris, '--input', notJson]);
  assert.is(cut.code, 1);
  assert.match(cut.stderr, /prediction failed for .*cut\.json: invalid input: request is not JSON/);
});

test('pyml predict --input - reads the request from stdin', async () => {
  const fromFile = await pyml(['predict', built.images.iris, '--input', SAMPLE, '--json']);
  const fromStdin = await runProcess(process.execPath, [PYML_BIN, 'predict', built.images.iris, '--input', '-', '--json'], { input: await readFile(SAMPLE, 'utf8') });
  assert.is(fromStdin.code, 0, fromStdin.stderr);
  assert.is(fromStdin.stdout, fromFile.stdout);
});

test('pyml serve: bad command lines exit 2 with the reason; two images with one name exit 1 naming it', async () => {
  const none = await pyml(['serve']);
  assert.is(none.code, 2);
  assert.match(none.stderr, /usage: pyml serve REF/);
  const addr = await pyml(['serve', built.images.iris, '--grpc', 'localhost']);
  assert.is(addr.code, 2);
  assert.match(addr.stderr, /--grpc must be HOST:PORT or unix:\/PATH, got 'localhost'/);
  const runner = await pyml(['serve', built.images.iris, '--runner', 'k8s']);
  assert.is(runner.code, 2);
  assert.match(runner.stderr, /--runner must be embedded or docker/);
  const start = await pyml(['serve', built.images.iris, '--start', 'lazy']);
  assert.is(start.code, 2);
  assert.match(start.stderr, /--start must be on-demand or eager, got 'lazy'/);
  const idle = await pyml(['serve', built.images.iris, '--start', 'eager', '--idle-timeout-s', '60']);
  assert.is(idle.code, 2);
  assert.match(idle.stderr, /--idle-timeout-s needs --start on-demand/);
  const twice = await pyml(['serve', built.images.iris, `${built.images.iris}.tar`, '--grpc', '127.0.0.1:0', '--http', '127.0.0.1:0']);
  assert.is(twice.code, 1);
  assert.match(twice.stderr, /are both version '1.0.0' of model 'iris'; each version can be served once/);
});

test('a relative PYML_CACHE_DIR is taken from the working directory (the image is unpacked and run from there)', async () => {
  const cwd = await mkdtemp(join(tmpdir(), 'pyml-relative-cache-'));
  try {
    const r = await pyml(['predict', built.images.iris, '--input', SAMPLE, '--json'], { cwd, env: { PYML_CACHE_DIR: 'cache' } });
    assert.is(r.code, 0, r.stderr);
    assert.equal(parseJson<{ outputs: { name: string }[] }>(r).outputs.map((o) => o.name), ['probabilities', 'label']);
    assert.ok((await readdir(join(cwd, 'cache/rootfs'))).length > 0, 'unpacked under the working directory');
  } finally {
    await rm(cwd, { recursive: true, force: true });
  }
});

test.run();
