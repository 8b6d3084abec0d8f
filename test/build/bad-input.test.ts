import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { existsSync } from 'node:fs';
import { mkdir, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { pyml } from '../helpers/cli.ts';
import { copyExample, editFile, tempDir } from '../helpers/project.ts';

const dirs: string[] = [];
test.after(async () => { for (const d of dirs) await rm(d, { recursive: true, force: true }); });

/** Builds a broken project and checks exit code, message, and that nothing is left at the output path. */
async function expectFailure(setup: (project: string) => Promise<void>, code: number, ...patterns: RegExp[]): Promise<void> {
  const project = await copyExample('onnx-iris');
  const out = await tempDir();
  dirs.push(project, out);
  await setup(project);
  const r = await pyml(['build', project, '--out', `${out}/image`, '--tar', `${out}/image.tar`]);
  assert.is(r.code, code, `exit code (stderr: ${r.stderr})`);
  for (const p of patterns) assert.match(r.stderr, p);
  assert.not.ok(r.stderr.includes('    at '), 'no stack trace');
  assert.not.ok(existsSync(`${out}/image`), 'no partial layout');
  assert.not.ok(existsSync(`${out}/image.tar`), 'no partial tarball');
}

const config = (p: string) => path.join(p, 'pyml.config.ts');

test('missing config: exit 2 naming the directory and what was looked for', async () => {
  await expectFailure(async (p) => { await rm(config(p)); }, 2, /no pyml config found/, /pyml\.config\.ts/);
});

test('schema violations name the file, the field path, the expectation and a hint', async () => {
  await expectFailure((p) => editFile(config(p), (t) => t.replace("name: 'iris'", "name: 'Iris Model'")), 2,
    /pyml\.config\.ts: name must match pattern/, /hint: the model's name/);
  await expectFailure((p) => editFile(config(p), (t) => t.replace("kind: 'tensor'", "kind: 'tensors'")), 2,
    /kind must be one of "tensor", "dataframe"/);
  await expectFailure((p) => editFile(config(p), (t) => t.replace("version: '1.0.0',", "version: '1.0.0', weigths: [],")), 2,
    /weigths is not a known field; did you mean 'weights'\?/, /known fields here: .*weights/);
  await expectFailure((p) => editFile(config(p), (t) => t.replace("version: '1.0.0',", "version: '1.0.0', signature: { inputs: [{ name: 'input', dtype: 'FLOAT', shape: [-1, 4] }], outputs: [] },")), 2,
    /signature\.inputs\[0\]\.dtype must be one of/, /signature\.outputs must NOT have fewer than 1 items/);
});

test('missing weights file: exit 2 naming weights[0] and the path', async () => {
  await expectFailure((p) => rm(path.join(p, 'weights/model.onnx')), 2, /weights\[0\]: weights\/model\.onnx does not exist/);
});

test('corrupt ONNX: exit 1 naming the plugin and the file', async () => {
  await expectFailure((p) => writeFile(path.join(p, 'weights/model.onnx'), Buffer.from('this is not an onnx model at all, just text\n'.repeat(10))), 1,
    /\[plugin onnx\] describeWeights/, /model\.onnx/);
});

test('declared signature that contradicts the model: a config error, exit 2, naming the tensor', async () => {
  await expectFailure((p) => editFile(config(p), (t) => t.replace("version: '1.0.0',",
    "version: '1.0.0', signature: { inputs: [{ name: 'input', dtype: 'FP64', shape: [-1, 5] }], outputs: [{ name: 'label', dtype: 'INT64', shape: [-1] }] },")), 2,
    /signature\.inputs\[0\] 'input': dtype FP64, but the model says FP32/, /dimension 1 is 5, but the model fixes it to 4/);
});

test('model module without a default-exported contract class: exit 1 with a hint', async () => {
  await expectFailure((p) => writeFile(path.join(p, 'src/model.ts'), 'export const notAModel = 1;\n'), 1, /has no default export/, /export default class/);
  await expectFailure((p) => writeFile(path.join(p, 'src/model.ts'), 'export default function predict() { return 1; }\n'), 1, /default export is not a model class/);
  await expectFailure(async (p) => { await mkdir(path.join(p, 'src'), { recursive: true }); await writeFile(path.join(p, 'src/model.ts'), 'export default class X {\n  oops(: number {}\n}\n'); }, 1, /src\/model\.ts:2:\d+: bundling the model/);
});

test('unknown command and bad flags: exit 2', async () => {
  const r = await pyml(['bild']);
  assert.is(r.code, 2);
  assert.match(r.stderr, /unknown command 'bild'/);
  const f = await pyml(['build', '--nope']);
  assert.is(f.code, 2);
});

test('--out that holds other files, or is a file, and --tar that is a directory, are refused before any work and left as they were', async () => {
  const project = await copyExample('onnx-iris');
  const out = await tempDir();
  dirs.push(project, out);
  const notes = path.join(out, 'notes');
  await mkdir(notes);
  await writeFile(path.join(notes, 'todo.txt'), 'precious\n');
  const dir = await pyml(['build', project, '--out', notes]);
  assert.is(dir.code, 2, dir.stderr);
  assert.match(dir.stderr, new RegExp(`--out ${notes} holds files and is not an OCI image layout \\(no oci-layout file\\); refusing to replace it`));
  assert.match(dir.stderr, /hint: give --out a new path, an empty directory, or an earlier image layout/);
  assert.equal(await readdir(notes), ['todo.txt']);
  assert.is(await readFile(path.join(notes, 'todo.txt'), 'utf8'), 'precious\n');
  const file = path.join(out, 'report.pdf');
  await writeFile(file, 'pdf');
  const onFile = await pyml(['build', project, '--out', file, '--json']);
  assert.is(onFile.code, 2);
  assert.match(JSON.parse(onFile.stdout).error.message, /report\.pdf exists and is not a directory; refusing to replace it/);
  assert.is(await readFile(file, 'utf8'), 'pdf');
  assert.equal((await readdir(out)).sort(), ['notes', 'report.pdf'], 'no temp directory was made beside them');
  const tarDir = await pyml(['build', project, '--out', path.join(out, 'fresh'), '--tar', notes]);
  assert.is(tarDir.code, 2);
  assert.match(tarDir.stderr, new RegExp(`--tar ${notes} is a directory`));
  assert.equal(await readdir(notes), ['todo.txt']);
  // An earlier layout and an empty directory are fine targets.
  const layout = path.join(out, 'layout');
  for (let i = 0; i < 2; i++) assert.is((await pyml(['build', project, '--out', layout])).code, 0);
  await mkdir(path.join(out, 'empty'));
  assert.is((await pyml(['build', project, '--out', path.join(out, 'empty')])).code, 0);
});

test.run();
