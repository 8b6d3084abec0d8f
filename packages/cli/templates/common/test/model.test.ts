/**
 * Builds this project into an image and predicts sample.json with it, as production will: the outputs must be
 * the ones the image's signature names, with the dtypes it declares and one row per input row.
 *
 *   npm test        (node --import tsx --test test/model.test.ts)
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const root = fileURLToPath(new URL('..', import.meta.url));
// The pyml command of the installed @pyml/cli, run with this node.
const PYML = fileURLToPath(new URL('../bin/pyml.js', import.meta.resolve('@pyml/cli/main')));
const pyml = (...args: string[]) => JSON.parse(execFileSync(process.execPath, [PYML, ...args], { cwd: root, encoding: 'utf8', stdio: ['ignore', 'pipe', 'inherit'] }));

interface Spec { name: string; dtype: string; shape: number[] }

test('builds, and predicts sample.json with the outputs the signature declares', () => {
  const image = path.join(root, '.pyml', 'test-image');
  const built = pyml('build', root, '--out', image, '--json') as { ok: boolean; signature: { inputs: Spec[]; outputs: Spec[] } };
  assert.equal(built.ok, true);
  const request = JSON.parse(readFileSync(path.join(root, 'sample.json'), 'utf8')) as { inputs: { name: string; shape: number[] }[] };
  const rows = request.inputs[0]!.shape[0];
  const response = pyml('predict', image, '--input', path.join(root, 'sample.json'), '--json') as { outputs: { name: string; datatype: string; shape: number[]; data: unknown[] }[] };
  assert.deepEqual(response.outputs.map((o) => o.name).sort(), built.signature.outputs.map((o) => o.name).sort());
  for (const spec of built.signature.outputs) {
    const out = response.outputs.find((o) => o.name === spec.name)!;
    assert.equal(out.datatype, spec.dtype, `${spec.name}: dtype`);
    assert.equal(out.shape[0], rows, `${spec.name}: one row per input row`);
    assert.equal(out.data.length, out.shape.reduce((a, b) => a * b, 1), `${spec.name}: data length`);
  }
});
