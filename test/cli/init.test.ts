/**
 * `pyml init`: every framework's scaffold builds and predicts as it stands (its own test/model.test.ts runs the
 * real CLI: build, then predict sample.json), and init never overwrites anything.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { readFile, readdir, rm, stat, symlink, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { REPO, parseJson, pyml, runProcess } from '../helpers/cli.ts';
import { tempDir } from '../helpers/project.ts';
import { requireTool } from '../helpers/tools.ts';

const cleanup: string[] = [];
test.after(async () => { for (const d of cleanup) await rm(d, { recursive: true, force: true }); });

/** A fresh directory for a project, with node_modules linked to the repo's as an installed project would have. */
async function projectDir(): Promise<string> {
  const dir = await tempDir('pyml-init-');
  cleanup.push(dir);
  await symlink(path.join(REPO, 'node_modules'), path.join(dir, 'node_modules'));
  return dir;
}

async function initAndTest(framework: string): Promise<string> {
  const dir = await projectDir();
  const r = await pyml(['init', dir, '--framework', framework, '--name', `starter-${framework}`, '--json']);
  assert.is(r.code, 0, r.stderr);
  const json = parseJson<{ files: string[] }>(r);
  for (const f of ['pyml.config.ts', 'sample.json', 'test/model.test.ts', 'package.json', 'README.md']) assert.ok(json.files.includes(f), `${framework}: ${f}`);
  // The project's own test: pyml build, then pyml predict sample.json, outputs checked against the signature.
  const t = await runProcess(process.execPath, ['--import', 'tsx', '--test', 'test/model.test.ts'], { cwd: dir });
  assert.is(t.code, 0, `${framework}: the scaffold's test failed:\n${t.stdout.slice(-3000)}\n${t.stderr.slice(-2000)}`);
  assert.match(t.stdout, /# pass 1/);
  // The scaffold's own TypeScript (config, model class, generator, test) typechecks against the public types.
  const tsc = await runProcess(process.execPath, [path.join(REPO, 'node_modules', 'typescript', 'bin', 'tsc'), '-p', dir, '--noEmit'], { cwd: dir });
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
  // The project's generator is runnable on its own and makes the same bytes init wrote.
  const again = path.join(dir, 'again.onnx');
  const g = await runProcess(process.execPath, ['--import', 'tsx', 'make-model.ts', again], { cwd: dir });
  assert.is(g.code, 0, g.stderr);
  assert.ok((await readFile(again)).equals(await readFile(path.join(dir, 'weights', 'model.onnx'))));
});

test('init refuses to overwrite: exit 2 naming the files, nothing written', async () => {
  const dir = await projectDir();
  await writeFile(path.join(dir, 'pyml.config.ts'), '// mine\n');
  await writeFile(path.join(dir, 'sample.json'), '{}\n');
  const r = await pyml(['init', dir]);
  assert.is(r.code, 2);
  assert.match(r.stderr, /pyml\.config\.ts, sample\.json already exist/);
  assert.is(await readFile(path.join(dir, 'pyml.config.ts'), 'utf8'), '// mine\n');
  assert.equal((await readdir(dir)).sort(), ['node_modules', 'pyml.config.ts', 'sample.json'], 'no other file, no staging directory left');
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
  const bad = await pyml(['init', dir, '--framework', 'caffe']);
  assert.is(bad.code, 2);
  assert.match(bad.stderr, /--framework must be one of onnx, tfjs, sklearn, pytorch/);
  const name = await pyml(['init', dir, '--name', 'Bad Name']);
  assert.is(name.code, 2);
  assert.match(name.stderr, /not a model name/);
  assert.equal(await readdir(dir), ['node_modules']);
});

test('init --framework tfjs builds and predicts', async () => { await initAndTest('tfjs'); });

test('init --framework sklearn builds and predicts', async () => {
  requireTool('/usr/bin/python3', 'python3-sklearn');
  await initAndTest('sklearn');
});

test('init --framework pytorch builds and predicts', async () => {
  requireTool('/usr/bin/python3', 'python3-torch');
  await initAndTest('pytorch');
});

test.run();
