/**
 * `pyml init`: every framework's scaffold builds and predicts as it stands, with no npm install and nothing in the
 * project but what init wrote: its own `npm test` (node:test, test/model.test.mjs) runs the `pyml` on PATH (here
 * a shim for this checkout's CLI) to build, then predict sample.json. Its package.json names no @pyml/* package,
 * its printed next steps are the ones that work, and init never overwrites anything.
 * (test/install runs the same flow with pyml installed from its packed tarballs.)
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { chmod, mkdir, readFile, readdir, rm, stat, symlink, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { PYML_BIN, REPO, parseJson, pyml, runProcess } from '../helpers/cli.ts';
import { tempDir } from '../helpers/project.ts';
import { requireTool } from '../helpers/tools.ts';
import { onnxStarterModel } from '../../packages/cli/src/scaffold/starters/onnx-model.ts';

const cleanup: string[] = [];
test.after(async () => { for (const d of cleanup) await rm(d, { recursive: true, force: true }); });

let shimBin: string;
/** PATH with a `pyml` command that runs this checkout's CLI with this node, first. */
const pathWithPyml = () => `${shimBin}${path.delimiter}${process.env.PATH ?? ''}`;

test.before(async () => {
  shimBin = await tempDir('pyml-init-bin-');
  cleanup.push(shimBin);
  await writeFile(path.join(shimBin, 'pyml'), `#!/bin/sh\nexec '${process.execPath}' '${PYML_BIN}' "$@"\n`);
  await chmod(path.join(shimBin, 'pyml'), 0o755);
});

/** A fresh, empty directory for a project: no node_modules, as a user's would be. */
async function projectDir(): Promise<string> {
  const dir = await tempDir('pyml-init-');
  cleanup.push(dir);
  return dir;
}

async function initAndTest(framework: string): Promise<string> {
  const dir = await projectDir();
  const r = await pyml(['init', dir, '--framework', framework, '--name', `starter-${framework}`, '--json']);
  assert.is(r.code, 0, r.stderr);
  const json = parseJson<{ files: string[] }>(r);
  for (const f of ['pyml.config.ts', 'sample.json', 'test/model.test.mjs', 'package.json', 'README.md']) assert.ok(json.files.includes(f), `${framework}: ${f}`);
  assert.not.ok(json.files.some((f) => f.endsWith('.ts') && f !== 'pyml.config.ts' && !f.startsWith('src/')), `${framework}: no TypeScript besides the config and the model: ${json.files.join(', ')}`);
  assert.not.ok(json.files.includes('make-model.ts'), `${framework}: no make-model.ts (it would need tsx)`);

  // Nothing to npm install: no dependencies at all, scripts call the pyml on PATH.
  const pkg = JSON.parse(await readFile(path.join(dir, 'package.json'), 'utf8')) as Record<string, Record<string, string> | undefined>;
  assert.is(pkg.dependencies, undefined, `${framework}: package.json has dependencies: ${JSON.stringify(pkg.dependencies)}`);
  assert.is(pkg.devDependencies, undefined, `${framework}: package.json has devDependencies: ${JSON.stringify(pkg.devDependencies)}`);
  assert.is(pkg.scripts!.test, 'node --test test/model.test.mjs');
  for (const script of Object.values(pkg.scripts!)) assert.not.match(script, /npx|tsx/, `${framework}: script '${script}'`);

  // The project's own test, as its README says: `npm test`, with pyml on PATH and nothing installed.
  const t = await runProcess('npm', ['test'], { cwd: dir, env: { PATH: pathWithPyml() } });
  assert.is(t.code, 0, `${framework}: the scaffold's npm test failed:\n${t.stdout.slice(-3000)}\n${t.stderr.slice(-2000)}`);
  assert.match(t.stdout, /# pass 1/);
  assert.equal(await readdir(dir).then((names) => names.filter((n) => n === 'node_modules')), [], `${framework}: npm test installed nothing`);

  // The scaffold's TypeScript (config, model class) typechecks against the public types, once the packages are
  // linked in (the README's optional editor step; here the checkout's node_modules, with the source condition).
  await symlink(path.join(REPO, 'node_modules'), path.join(dir, 'node_modules'));
  const tsc = await runProcess(process.execPath, [path.join(REPO, 'node_modules', 'typescript', 'bin', 'tsc'), '-p', dir, '--noEmit', '--customConditions', 'source'], { cwd: dir });
  const own = tsc.stdout.split('\n').filter((l) => /^(src\/|test\/|[^/]+\.ts\()/.test(l));
  assert.equal(own, [], `${framework}: the scaffold does not typecheck:\n${tsc.stdout}`);
  return dir;
}

test('init --framework onnx: builds and predicts as it stands; predictions are probabilities', async () => {
  const dir = await initAndTest('onnx');
  const config = await readFile(path.join(dir, 'pyml.config.ts'), 'utf8');
  assert.match(config, /name: 'starter-onnx'/);
  const r = await pyml(['predict', path.join(dir, '.pyml', 'test-image'), '--input', path.join(dir, 'sample.json'), '--json']);
  assert.is(r.code, 0, r.stderr);
  const probs = parseJson<{ outputs: { name: string; shape: number[]; data: number[] }[] }>(r).outputs.find((o) => o.name === 'probabilities')!;
  assert.equal(probs.shape, [2, 2]);
  for (let row = 0; row < 2; row++) assert.ok(Math.abs(probs.data[row * 2]! + probs.data[row * 2 + 1]! - 1) < 1e-6, 'softmax rows sum to 1');
  // The starter is pyml's own compiled generator's, byte for byte (deterministic: same weights on every init).
  assert.ok((await readFile(path.join(dir, 'weights', 'model.onnx'))).equals(onnxStarterModel()), 'weights/model.onnx is the starter generator\'s');
});

test('init prints next steps that need no npm install and no npx', async () => {
  const parent = await projectDir();
  const r = await runProcess(process.execPath, [PYML_BIN, 'init', 'My Model'], { cwd: parent });
  assert.is(r.code, 0, r.stderr);
  const next = r.stdout.slice(r.stdout.indexOf('next:'));
  assert.match(next, /cd 'My Model'\n/);
  assert.match(next, /pyml build \. --out \.pyml\/image/);
  assert.match(next, /pyml predict \.pyml\/image --input sample\.json/);
  assert.match(next, /pyml serve \.pyml\/image/);
  assert.match(next, /npm test/);
  assert.not.match(r.stdout, /npm install|npx|tsx/, 'no step that fails without a registry');
  const readme = await readFile(path.join(parent, 'My Model', 'README.md'), 'utf8');
  assert.match(readme, /pyml build \. --out \.pyml\/image/);
  assert.not.match(readme, /npm install|npx pyml|--import tsx/, 'the README has no step that fails');
});

test('init refuses to overwrite: exit 2 naming the files, nothing written', async () => {
  const dir = await projectDir();
  await writeFile(path.join(dir, 'pyml.config.ts'), '// mine\n');
  await writeFile(path.join(dir, 'sample.json'), '{}\n');
  const r = await pyml(['init', dir]);
  assert.is(r.code, 2);
  assert.match(r.stderr, /pyml\.config\.ts, sample\.json already exist/);
  assert.is(await readFile(path.join(dir, 'pyml.config.ts'), 'utf8'), '// mine\n');
  assert.equal((await readdir(dir)).sort(), ['pyml.config.ts', 'sample.json'], 'no other file, no staging directory left');
});

test('init into a new directory creates it; a second init there is refused', async () => {
  const parent = await projectDir();
  const dir = path.join(parent, 'My Model');
  const r = await pyml(['init', dir]);
  assert.is(r.code, 0, r.stderr);
  assert.match(await readFile(path.join(dir, 'pyml.config.ts'), 'utf8'), /name: 'my-model'/, 'the name comes from the directory');
  assert.ok((await stat(path.join(dir, 'weights', 'model.onnx'))).size > 100);
  const again = await pyml(['init', dir]);
  assert.is(again.code, 2);
  assert.match(again.stderr, /already exist/);
});

test('init usage errors exit 2', async () => {
  const dir = await projectDir();
  await mkdir(path.join(dir, 'x'));
  const bad = await pyml(['init', dir, '--framework', 'caffe']);
  assert.is(bad.code, 2);
  assert.match(bad.stderr, /--framework must be one of onnx, tfjs, sklearn, pytorch/);
  const name = await pyml(['init', dir, '--name', 'Bad Name']);
  assert.is(name.code, 2);
  assert.match(name.stderr, /not a model name/);
  assert.equal(await readdir(dir), ['x']);
});

test('init --framework tfjs builds and predicts', async () => {
  const dir = await initAndTest('tfjs');
  const manifest = JSON.parse(await readFile(path.join(dir, 'weights', 'model', 'model.json'), 'utf8')) as { format: string };
  assert.is(manifest.format, 'layers-model');
});

test('init --framework sklearn builds and predicts', async () => {
  requireTool('/usr/bin/python3', 'python3-sklearn');
  await initAndTest('sklearn');
});

test('init --framework pytorch builds and predicts', async () => {
  requireTool('/usr/bin/python3', 'python3-torch');
  await initAndTest('pytorch');
});

test.run();
