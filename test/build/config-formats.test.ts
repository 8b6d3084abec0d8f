import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { execFileSync } from 'node:child_process';
import { mkdir, rm, symlink, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { pyml, parseJson, REPO, runProcess } from '../helpers/cli.ts';
import { tempDir } from '../helpers/project.ts';
import { requireTool } from '../helpers/tools.ts';

const dirs: string[] = [];
test.after(async () => { for (const d of dirs) await rm(d, { recursive: true, force: true }); });

const MODEL = `import { TensorModel, tensor } from '@pyml/contract';
/** No framework at all: doubles its input, to show the contract needs no plugin. */
export default class Doubler extends TensorModel {
  init() {}
  async predict(inputs) {
    const x = inputs.x;
    return { y: tensor('FP64', x.shape, Float64Array.from(x.data, (v) => v * 2)) };
  }
}
`;
const SIGNATURE = { inputs: [{ name: 'x', dtype: 'FP64', shape: [-1] }], outputs: [{ name: 'y', dtype: 'FP64', shape: [-1] }] };

async function project(configFile: string, config: string): Promise<string> {
  const dir = await tempDir();
  dirs.push(dir);
  await mkdir(path.join(dir, 'src'));
  await writeFile(path.join(dir, 'src/model.mjs'), MODEL);
  await writeFile(path.join(dir, configFile), config);
  await symlink(path.join(REPO, 'node_modules'), path.join(dir, 'node_modules'));
  return dir;
}

async function buildAndPredict(dir: string): Promise<number[]> {
  requireTool('umoci');
  const r = await pyml(['build', dir, '--out', `${dir}/oci`, '--json']);
  assert.is(r.code, 0, r.stderr);
  assert.equal(parseJson<{ parts: { part: string }[] }>(r).parts.map((p) => p.part), ['base', 'weights', 'model', 'entrypoint']);
  execFileSync('umoci', ['unpack', '--image', `${dir}/oci:1.0.0`, `${dir}/bundle`], { stdio: 'pipe' });
  await writeFile(`${dir}/bundle/rootfs/tmp/in.json`, JSON.stringify({ inputs: [{ name: 'x', datatype: 'FP64', shape: [3], data: [1, 2.5, -4] }] }));
  const run = await runProcess('chroot', [`${dir}/bundle/rootfs`, '/usr/local/bin/node', '/opt/pyml/runtime/entrypoint.mjs', 'predict', '--input', '/tmp/in.json', '--json']);
  assert.is(run.code, 0, run.stderr);
  return JSON.parse(run.stdout).outputs[0].data;
}

test('pyml.config.json: a plain-JS model with a declared signature and no plugin builds and runs', async () => {
  const dir = await project('pyml.config.json', JSON.stringify({ name: 'doubler', version: '1.0.0', model: './src/model.mjs', signature: SIGNATURE }));
  assert.equal(await buildAndPredict(dir), [2, 5, -8]);
});

test('pyml.config.mjs is found and loaded too', async () => {
  const dir = await project('pyml.config.mjs', `export default { name: 'doubler', version: '1.0.0', model: './src/model.mjs', signature: ${JSON.stringify(SIGNATURE)} };\n`);
  assert.equal(await buildAndPredict(dir), [2, 5, -8]);
});

test('no signature declared and none inferable: exit 2 with a hint', async () => {
  const dir = await project('pyml.config.json', JSON.stringify({ name: 'doubler', version: '1.0.0', model: './src/model.mjs' }));
  const r = await pyml(['build', dir, '--out', `${dir}/oci`]);
  assert.is(r.code, 2);
  assert.match(r.stderr, /pyml\.config\.json: no signature/);
  assert.match(r.stderr, /hint: declare `signature/);
});

test('a JSON config that is not valid JSON names the file', async () => {
  const dir = await project('pyml.config.json', '{ "name": "doubler", ');
  const r = await pyml(['build', dir]);
  assert.is(r.code, 2);
  assert.match(r.stderr, /pyml\.config\.json/);
});

test.run();
