import assert from 'node:assert/strict';
import { writeFile } from 'node:fs/promises';
import path from 'node:path';
import { test } from 'uvu';
import { parseJson, pyml } from '../helpers/cli.ts';
import { copyExample, editFile, tempDir } from '../helpers/project.ts';
import { deploy, readWritten, SERVE_IMAGE } from './fixtures.ts';

const withDeploy = (text: string) => (t: string) => t.replace("plugins: [onnx()],", `plugins: [onnx()],\n  deploy: ${text},`);

test('the config\'s deploy.resources travel in the image (pyml.json) and size the model container; --resources still wins', async () => {
  const project = await copyExample('onnx-iris');
  await editFile(path.join(project, 'pyml.config.ts'), withDeploy("{ resources: { requests: { cpu: 2, memory: '1Gi' }, limits: { memory: '3Gi' } } }"));
  const layout = path.join(await tempDir(), 'layout');
  const built = await pyml(['build', project, '--out', layout, '--json']);
  assert.equal(built.code, 0, built.stderr);
  const inspected = await pyml(['inspect', 'image', layout, '--json']);
  assert.equal(inspected.code, 0, inspected.stderr);

  const r = await deploy([`${layout}=127.0.0.1:5000/models/iris`, '--serve-image', SERVE_IMAGE]);
  assert.equal(r.code, 0, r.stderr);
  const model = (await readWritten(r.out)).objects.find((o) => o.kind === 'Deployment')!.spec.template.spec.containers[1];
  assert.deepEqual(model.resources, { requests: { cpu: '2', memory: '1Gi' }, limits: { memory: '3Gi' } });

  const file = path.join(await tempDir(), 'resources.json');
  await writeFile(file, JSON.stringify({ models: { iris: { requests: { cpu: '250m' } } } }));
  const overridden = await deploy([`${layout}=127.0.0.1:5000/models/iris`, '--serve-image', SERVE_IMAGE, '--resources', file]);
  assert.equal(overridden.code, 0, overridden.stderr);
  const again = (await readWritten(overridden.out)).objects.find((o) => o.kind === 'Deployment')!.spec.template.spec.containers[1];
  assert.deepEqual(again.resources, { requests: { cpu: '250m', memory: '1Gi' }, limits: { memory: '3Gi' } });
  assert.equal(parseJson<{ name: string }>(inspected).name, 'iris');
});

test('a deploy.resources quantity that is not one fails the build, naming the field', async () => {
  const project = await copyExample('onnx-iris');
  await editFile(path.join(project, 'pyml.config.ts'), withDeploy("{ resources: { limits: { memory: 'plenty' } } }"));
  const r = await pyml(['build', project, '--out', path.join(await tempDir(), 'layout')]);
  assert.equal(r.code, 2, r.stderr);
  assert.match(r.stderr, /deploy\.resources\.limits\.memory|deploy\/resources\/limits\/memory/);
});

test.run();
