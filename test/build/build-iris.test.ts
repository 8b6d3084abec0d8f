import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { execFileSync } from 'node:child_process';
import { cp, readFile, rm, stat, writeFile } from 'node:fs/promises';
import path from 'node:path';
import * as ort from 'onnxruntime-node';
import { pyml, parseJson, REPO, runProcess } from '../helpers/cli.ts';
import { tempDir } from '../helpers/project.ts';
import { requireTool } from '../helpers/tools.ts';

interface BuildJson { ok: boolean; digest: string; layout: string; tar?: string; parts: { part: string; name: string; digest: string; size: number; mediaType: string; reused: boolean }[] }

const example = path.join(REPO, 'examples/onnx-iris');
let work: string;
let built: BuildJson;

test.before(async () => {
  requireTool('skopeo');
  requireTool('umoci');
  work = await tempDir();
  const r = await pyml(['build', example, '--out', `${work}/oci`, '--tar', `${work}/iris.tar`, '--json']);
  assert.is(r.code, 0, r.stderr);
  built = parseJson<BuildJson>(r);
});

test.after(async () => { await rm(work, { recursive: true, force: true }); });

test('build --json reports the digest, outputs and the five parts in order', () => {
  assert.ok(built.ok);
  assert.match(built.digest, /^sha256:[0-9a-f]{64}$/);
  assert.is(built.layout, `${work}/oci`);
  assert.is(built.tar, `${work}/iris.tar`);
  assert.equal(built.parts.map((p) => p.part), ['base', 'deps', 'weights', 'model', 'entrypoint']);
  for (const p of built.parts) assert.match(p.digest, /^sha256:/);
  assert.is(built.parts.find((p) => p.part === 'deps')!.name, 'onnxruntime-node');
});

test('skopeo accepts the layout and both tarball forms with the same digest', () => {
  const layout = JSON.parse(execFileSync('skopeo', ['inspect', '--raw', `oci:${work}/oci:1.0.0`], { encoding: 'utf8' }));
  assert.is(layout.layers.length, 5);
  assert.equal(layout.layers.map((l: { annotations: Record<string, string> }) => l.annotations['dev.pyml.part']), ['base', 'deps', 'weights', 'model', 'entrypoint']);
  const viaArchive = JSON.parse(execFileSync('skopeo', ['inspect', `oci-archive:${work}/iris.tar`], { encoding: 'utf8' }));
  assert.is(viaArchive.Digest, built.digest);
  const viaDocker = JSON.parse(execFileSync('skopeo', ['inspect', `docker-archive:${work}/iris.tar`], { encoding: 'utf8' }));
  assert.is(viaDocker.Layers.length, 5);
  assert.is(viaDocker.Labels['org.opencontainers.image.title'], 'iris');
});

test('the image runs: umoci-unpacked rootfs, chroot, entrypoint predict equals in-process onnxruntime', async () => {
  execFileSync('umoci', ['unpack', '--image', `${work}/oci:1.0.0`, `${work}/bundle`], { stdio: 'pipe' });
  const rootfs = `${work}/bundle/rootfs`;
  assert.ok((await stat(`${rootfs}/usr/local/bin/node`)).mode & 0o111, 'node is executable');
  assert.ok((await stat(`${rootfs}/opt/pyml/node_modules/onnxruntime-node/package.json`)).isFile());
  await cp(path.join(example, 'sample.json'), `${rootfs}/tmp/sample.json`);
  // chroot: nothing of the host is visible, so this proves the image carries all it needs.
  const r = await runProcess('chroot', [rootfs, '/usr/local/bin/node', '/opt/pyml/runtime/entrypoint.mjs', 'predict', '--input', '/tmp/sample.json'], { env: { PYML_CACHE_DIR: '' } });
  assert.is(r.code, 0, r.stderr);
  const served = JSON.parse(r.stdout) as { outputs: { name: string; datatype: string; shape: number[]; data: number[] }[] };

  const sample = JSON.parse(await readFile(path.join(example, 'sample.json'), 'utf8')) as { inputs: { name: string; shape: number[]; data: number[] }[] };
  const session = await ort.InferenceSession.create(path.join(example, 'weights/model.onnx'));
  const input = sample.inputs[0]!;
  const expected = await session.run({ [input.name]: new ort.Tensor('float32', Float32Array.from(input.data), input.shape) });
  for (const name of session.outputNames) {
    const got = served.outputs.find((o) => o.name === name);
    assert.ok(got, `output ${name} served`);
    assert.equal(got!.shape, [...expected[name]!.dims]);
    assert.equal(got!.data.map(Number), Array.from(expected[name]!.data as ArrayLike<number | bigint>, Number));
  }
});

test('inspect image shows parts, signature, deps and entrypoint; --verify passes', async () => {
  const r = await pyml(['inspect', 'image', `${work}/oci`, '--json', '--verify']);
  assert.is(r.code, 0, r.stderr);
  const d = parseJson<{ digest: string; name: string; parts: { part: string }[]; signature: { inputs: { name: string; dtype: string; shape: number[] }[] }; deps: { name: string; version: string; license?: string }[]; entrypoint: { entrypoint: string[] }; verified: boolean }>(r);
  assert.is(d.digest, built.digest);
  assert.is(d.name, 'iris');
  assert.equal(d.signature.inputs, [{ name: 'input', dtype: 'FP32', shape: [-1, 4] }]);
  assert.ok(d.deps.some((x) => x.name === 'onnxruntime-node' && x.version && x.license));
  assert.equal(d.entrypoint.entrypoint, ['/usr/local/bin/node', '/opt/pyml/runtime/entrypoint.mjs']);
  assert.ok(d.verified);
  const text = await pyml(['inspect', 'image', `${work}/iris.tar`]);
  assert.is(text.code, 0, text.stderr);
  for (const word of ['base', 'deps', 'weights', 'model', 'entrypoint', 'input', 'FP32', 'onnxruntime-node', built.digest]) assert.ok(text.stdout.includes(word), `text output mentions ${word}`);
});

test('inspect --verify exits 1 naming a corrupted blob', async () => {
  await cp(`${work}/oci`, `${work}/corrupt`, { recursive: true, dereference: true });
  const weights = built.parts.find((p) => p.part === 'model')!;
  const blob = `${work}/corrupt/blobs/sha256/${weights.digest.slice('sha256:'.length)}`;
  const bytes = await readFile(blob);
  bytes[bytes.length - 5] ^= 0xff;
  await rm(blob);
  await writeFile(blob, bytes);
  const r = await pyml(['inspect', 'image', `${work}/corrupt`, '--verify']);
  assert.is(r.code, 1, r.stdout + r.stderr);
  assert.ok(r.stderr.includes(weights.digest), r.stderr);
});

test.run();
