/**
 * Tests a pyml plugin two ways:
 *  - hooks called directly with a HookContext, as the build calls them (fast, precise errors);
 *  - the example project built into a real image with the `pyml` on PATH and run once with `pyml predict`
 *    (set PYML to another command to try another pyml).
 *
 *   npm test        (node --import tsx --test test/plugin.test.ts; `npm install` first, for tsx)
 */
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import type { HookContext, ResolvedConfig } from '@pyml/core/types';
import plugin from '../src/index.ts';

const root = fileURLToPath(new URL('..', import.meta.url));
const example = path.join(root, 'example');
const scratch = mkdtempSync(path.join(tmpdir(), '__PLUGIN__-test-'));
after(() => rmSync(scratch, { recursive: true, force: true }));

const ctx: HookContext = {
  config: { root: example, weights: [], model: undefined } as unknown as ResolvedConfig,
  platform: { os: 'linux', architecture: 'amd64' },
  log: () => {},
  cacheDir: scratch,
};
const fileOf = (p: string) => ({ path: p, name: path.basename(p), size: statSync(p).size });

test('transformWeights converts the CSV, describeWeights infers the signature', async () => {
  const p = plugin();
  const replaced = await p.transformWeights!(fileOf(path.join(example, 'weights', 'model.linear.csv')), ctx);
  assert.ok(replaced);
  assert.equal(replaced.name, 'model.linear.json');
  const described = await p.describeWeights!(fileOf(replaced.path), ctx);
  assert.deepEqual(described?.signature, {
    inputs: [{ name: 'input', dtype: 'FP32', shape: [-1, 3] }],
    outputs: [{ name: 'output', dtype: 'FP32', shape: [-1, 2] }],
  });
});

test('describeWeights ignores other formats and rejects a corrupt file, naming the field', async () => {
  const p = plugin();
  const other = path.join(scratch, 'model.onnx');
  writeFileSync(other, 'not ours');
  assert.equal(await p.describeWeights!(fileOf(other), ctx), undefined);
  const bad = path.join(scratch, 'bad.linear.json');
  writeFileSync(bad, JSON.stringify({ weights: [[1, 2], [3]], bias: [0, 0] }));
  await assert.rejects(async () => p.describeWeights!(fileOf(bad), ctx), /weights\[1\] has 1 values/);
});

test('the example builds into an image and predicts sample.json', () => {
  const PYML = process.env.PYML || 'pyml';
  const run = (...args: string[]) => JSON.parse(execFileSync(PYML, args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'inherit'] }));
  const image = path.join(scratch, 'image');
  const built = run('build', example, '--out', image, '--json');
  assert.equal(built.ok, true);
  assert.ok(built.parts.some((p: { part: string; name: string }) => p.part === 'deps' && p.name === '__PLUGIN__'));
  const response = run('predict', image, '--input', path.join(example, 'sample.json'), '--json');
  const output = response.outputs.find((o: { name: string }) => o.name === 'output');
  // [1,2,3]·W + b = [1 + 1.5 + 0.1, 4 - 3 + 0.2]; [0,0,0] gives the bias.
  assert.deepEqual(output.shape, [2, 2]);
  output.data.forEach((v: number, i: number) => assert.ok(Math.abs(v - [2.6, 1.2, 0.1, 0.2][i]!) < 1e-6, `output[${i}] = ${v}`));
});
