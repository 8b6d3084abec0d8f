/**
 * Images named as `pyml images` lists them: `pyml predict NAME@VERSION` and `pyml serve NAME@1 NAME:2` run built
 * images from the cache with no layout path (a layout made from the blob store), so two versions of one model are
 * served side by side by name; an unknown version is exit 2 naming it.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { type ChildProcess, spawn } from 'node:child_process';
import { readFile, rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { createInterface } from 'node:readline';
import { PYML_BIN, REPO, parseJson, pyml, testEnv } from '../helpers/cli.ts';
import { copyExample, tempDir } from '../helpers/project.ts';

const SAMPLE = path.join(REPO, 'examples', 'onnx-iris', 'sample.json');
// Versions no other run builds, so the name resolves to this test's images only.
const stamp = String(Date.now());
const versions = [`1.${stamp}`, `2.${stamp}`];
let project = '';
let out = '';

test.before(async () => {
  out = await tempDir('pyml-named-');
  project = await copyExample('onnx-iris');
  const config = path.join(project, 'pyml.config.ts');
  const original = await readFile(config, 'utf8');
  for (const [i, version] of versions.entries()) {
    await writeFile(config, original.replace("name: 'iris'", "name: 'named-iris'").replace("version: '1.0.0'", `version: '${version}'`));
    // Built to a layout that is then removed: only the cache knows the image afterwards.
    const layout = path.join(out, `image${i}`);
    const built = await pyml(['build', project, '--out', layout]);
    assert.is(built.code, 0, built.stderr);
    await rm(layout, { recursive: true, force: true });
  }
});
test.after(async () => {
  await rm(out, { recursive: true, force: true });
  await rm(project, { recursive: true, force: true });
});

test('pyml predict NAME@VERSION runs a built image from the cache; an unknown version is exit 2', async () => {
  const ran = await pyml(['predict', `named-iris@${versions[0]}`, '--input', SAMPLE, '--json']);
  assert.is(ran.code, 0, ran.stderr);
  const body = parseJson<{ outputs: { name: string; data: number[] }[] }>(ran);
  assert.equal(body.outputs.find((o) => o.name === 'label')!.data, [0, 2]);
  const missing = await pyml(['predict', 'named-iris@9.9.9', '--input', SAMPLE]);
  assert.is(missing.code, 2);
  assert.match(missing.stderr, /named-iris@9\.9\.9/);
});

test('pyml serve NAME@1 NAME:2 serves both versions of one model, each by its version route', async () => {
  const serve: ChildProcess = spawn(process.execPath, [PYML_BIN, 'serve', `named-iris@${versions[0]}`, `named-iris:${versions[1]}`, '--grpc', '127.0.0.1:0', '--http', '127.0.0.1:0', '--json'],
    { env: { ...process.env, ...testEnv() }, stdio: ['ignore', 'pipe', 'pipe'] });
  let stderr = '';
  serve.stderr!.on('data', (d: Buffer) => { stderr += d.toString(); });
  try {
    const ready = await new Promise<{ http: string; models: { name: string; version: string }[] }>((resolve, reject) => {
      createInterface({ input: serve.stdout! }).once('line', (line) => resolve(JSON.parse(line)));
      serve.once('exit', (code) => reject(new Error(`pyml serve exited ${code}: ${stderr}`)));
    });
    assert.equal(ready.models.map((m) => `${m.name}@${m.version}`).sort(), versions.map((v) => `named-iris@${v}`));
    const sample = await readFile(SAMPLE, 'utf8');
    for (const version of versions) {
      const answer = await fetch(`http://${ready.http}/v2/models/named-iris/versions/${version}/infer`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: sample });
      assert.is(answer.status, 200, await answer.clone().text());
      const body = await answer.json() as { model_version: string; outputs: { name: string; data: number[] }[] };
      assert.is(body.model_version, version);
      assert.equal(body.outputs.find((o) => o.name === 'label')!.data, [0, 2]);
    }
  } finally {
    serve.kill('SIGTERM');
    await new Promise((resolve) => serve.once('exit', resolve));
  }
});

test.run();
