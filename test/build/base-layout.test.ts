import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { execFileSync } from 'node:child_process';
import { cp, rm } from 'node:fs/promises';
import path from 'node:path';
import { pyml, parseJson, REPO, runProcess } from '../helpers/cli.ts';
import { copyExample, editFile, tempDir } from '../helpers/project.ts';
import { requireTool } from '../helpers/tools.ts';

interface BuildJson { digest: string; parts: { part: string; name: string; digest: string }[] }

const dirs: string[] = [];
test.after(async () => { for (const d of dirs) await rm(d, { recursive: true, force: true }); });

test('image.base may name an OCI layout: its layers are reused byte for byte and the result runs', async () => {
  requireTool('umoci');
  const work = await tempDir();
  dirs.push(work);
  // The base: an image pyml built (it has node at /usr/local/bin/node, as official Node images do).
  const baseProject = await copyExample('onnx-iris');
  dirs.push(baseProject);
  const baseBuild = await pyml(['build', baseProject, '--out', `${work}/base`, '--json']);
  assert.is(baseBuild.code, 0, baseBuild.stderr);
  const base = parseJson<BuildJson>(baseBuild);

  const project = await copyExample('onnx-iris');
  dirs.push(project);
  await editFile(path.join(project, 'pyml.config.ts'), (t) => t.replace("plugins: [onnx()],", `plugins: [onnx()], image: { base: ${JSON.stringify(`${work}/base`)}, labels: { team: 'risk' } },`));
  const r = await pyml(['build', project, '--out', `${work}/derived`, '--json']);
  assert.is(r.code, 0, r.stderr);
  const derived = parseJson<BuildJson>(r);
  const baseParts = derived.parts.filter((p) => p.part === 'base');
  assert.equal(baseParts.map((p) => p.digest), base.parts.map((p) => p.digest), 'every layer of the base image, unchanged and in order');
  assert.equal(derived.parts.slice(baseParts.length).map((p) => p.part), ['deps', 'weights', 'model', 'entrypoint']);

  const config = JSON.parse(execFileSync('skopeo', ['inspect', '--config', `oci:${work}/derived:1.0.0`], { encoding: 'utf8' }));
  assert.ok(config.config.Env.some((e: string) => e.startsWith('PATH=')), 'the base config Env is kept');
  assert.is(config.config.Labels.team, 'risk');

  execFileSync('umoci', ['unpack', '--image', `${work}/derived:1.0.0`, `${work}/bundle`], { stdio: 'pipe' });
  const rootfs = `${work}/bundle/rootfs`;
  await cp(path.join(REPO, 'examples/onnx-iris/sample.json'), `${rootfs}/tmp/sample.json`);
  const run = await runProcess('chroot', [rootfs, '/usr/local/bin/node', '/opt/pyml/runtime/entrypoint.mjs', 'predict', '--input', '/tmp/sample.json', '--json']);
  assert.is(run.code, 0, run.stderr);
  assert.is(JSON.parse(run.stdout).outputs.length, 2);
});

test('a base for another platform is refused with a clear error and nothing written', async () => {
  const work = await tempDir();
  dirs.push(work);
  const baseProject = await copyExample('onnx-iris');
  dirs.push(baseProject);
  assert.is((await pyml(['build', baseProject, '--out', `${work}/base`])).code, 0);
  const project = await copyExample('onnx-iris');
  dirs.push(project);
  await editFile(path.join(project, 'pyml.config.ts'), (t) => t.replace("plugins: [onnx()],", `plugins: [onnx()], image: { base: ${JSON.stringify(`${work}/base`)}, platform: 'linux/arm64' },`));
  const r = await pyml(['build', project, '--out', `${work}/derived`]);
  assert.is(r.code, 2, r.stderr);
  assert.match(r.stderr, /image\.base .* is for linux\/amd64, but the image is built for linux\/arm64/);
  const missing = await pyml(['inspect', 'image', `${work}/derived`]);
  assert.is(missing.code, 2, 'nothing was written at the output path (no image there: exit 2, as for any missing image)');
  assert.match(missing.stderr, /no image at /);
});

test.run();
