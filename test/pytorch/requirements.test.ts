import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { execFileSync } from 'node:child_process';
import { mkdir, readdir, rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { pyml, parseJson } from '../helpers/cli.ts';
import { copyExample, editFile, tempDir } from '../helpers/project.ts';

/**
 * requirements.txt + a wheel directory: a wheel made here (setuptools, offline) is installed by the build with
 * pip --no-index --find-links into its own deps layer, listed in the deps manifest, and imported by the model
 * inside the image (`pyml predict` runs the image's own Python).
 */

let work: string;
let project: string;

test.before(async () => {
  work = await tempDir('pyml-pytorch-req-');
  const src = path.join(work, 'tinyscale');
  await mkdir(src, { recursive: true });
  await writeFile(path.join(src, 'setup.py'), "from setuptools import setup\nsetup(name='tinyscale', version='0.3.1', py_modules=['tinyscale'], license='MIT')\n");
  await writeFile(path.join(src, 'tinyscale.py'), 'def scale(x):\n    return x * 3\n');
  execFileSync('/usr/bin/python3', ['-m', 'pip', 'wheel', '--no-deps', '--no-build-isolation', '--no-index', '--quiet', '-w', path.join(work, 'wheels'), src], { stdio: 'pipe', env: { ...process.env, PIP_CONFIG_FILE: '/dev/null' } });
  assert.ok((await readdir(path.join(work, 'wheels'))).some((f) => f.startsWith('tinyscale-0.3.1') && f.endsWith('.whl')));
  project = await copyExample('pytorch-mlp');
  execFileSync('cp', ['-r', path.join(work, 'wheels'), path.join(project, 'wheels')]);
  await writeFile(path.join(project, 'requirements.txt'), 'tinyscale==0.3.1\n');
  await editFile(path.join(project, 'pyml.config.ts'), (t) => t.replace("pytorch({ model: './src/model.py' })", "pytorch({ model: './src/model.py', requirements: './requirements.txt', wheels: './wheels' })"));
  await editFile(path.join(project, 'src/model.py'), (t) => t.replace('        torch.set_grad_enabled(False)', '        import tinyscale\n        if tinyscale.scale(2) != 6:\n            raise RuntimeError("tinyscale is wrong")\n        torch.set_grad_enabled(False)'));
});

test.after(async () => {
  await rm(work, { recursive: true, force: true });
  await rm(project, { recursive: true, force: true });
});

test('the requirements layer is built, listed with name, version and licence, and imported inside the image', async () => {
  const r = await pyml(['build', project, '--out', `${work}/oci`, '--json']);
  assert.is(r.code, 0, r.stderr);
  const built = parseJson<{ parts: { part: string; name: string }[] }>(r);
  assert.equal(built.parts.filter((p) => p.part === 'deps').map((p) => p.name), ['python', 'python-requirements', 'pyml-python']);
  const inspect = await pyml(['inspect', 'image', `${work}/oci`, '--json']);
  const deps = parseJson<{ deps: { name: string; version: string; license?: string; plugin?: string }[] }>(inspect).deps;
  assert.equal(deps.find((d) => d.name === 'tinyscale'), { name: 'tinyscale', version: '0.3.1', license: 'MIT', plugin: 'pytorch', type: 'pypi' });
  const p = await pyml(['predict', `${work}/oci`, '--input', path.join(project, 'sample.json'), '--json']);
  assert.is(p.code, 0, p.stderr);
  assert.ok(p.stdout.includes('probabilities'), p.stdout);
});

test('a requirement missing from the wheel directory fails the build naming the files', async () => {
  await writeFile(path.join(project, 'requirements.txt'), 'tinyscale==0.3.1\nnot-a-wheel-here==1.0\n');
  const r = await pyml(['build', project, '--out', `${work}/oci-bad`]);
  assert.is(r.code, 1, r.stdout + r.stderr);
  assert.ok(r.stderr.includes('requirements.txt') && r.stderr.includes('wheels') && /not-a-wheel-here/.test(r.stderr), r.stderr);
});

test.run();
