/**
 * Builds this project into an image and predicts sample.json with it, as production will: the outputs must be
 * the ones the image's signature names, with the dtypes it declares and one row per input row.
 *
 *   npm test        (node --test test/model.test.mjs: node's own test runner, nothing to install)
 *
 * It runs the `pyml` on your PATH (set PYML to another command to try another pyml).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const root = fileURLToPath(new URL('..', import.meta.url));
const PYML = process.env.PYML || 'pyml';

/** Runs pyml with --json and parses its answer; a failure shows pyml's own message. */
function pyml(...args) {
  let stdout;
  try {
    stdout = execFileSync(PYML, [...args, '--json'], { cwd: root, encoding: 'utf8', stdio: ['ignore', 'pipe', 'inherit'] });
  } catch (error) {
    if (error.code === 'ENOENT') throw new Error(`'${PYML}' is not on PATH: install pyml (see its README), or set PYML`);
    throw new Error(`pyml ${args.join(' ')} failed (exit ${error.status}); its message is above`);
  }
  return JSON.parse(stdout);
}

test('builds, and predicts sample.json with the outputs the signature declares', () => {
  const image = path.join(root, '.pyml', 'test-image');
  const built = pyml('build', root, '--out', image);
  assert.equal(built.ok, true);
  const request = JSON.parse(readFileSync(path.join(root, 'sample.json'), 'utf8'));
  const rows = request.inputs[0].shape[0];
  const response = pyml('predict', image, '--input', path.join(root, 'sample.json'));
  assert.deepEqual(response.outputs.map((o) => o.name).sort(), built.signature.outputs.map((o) => o.name).sort());
  for (const spec of built.signature.outputs) {
    const out = response.outputs.find((o) => o.name === spec.name);
    assert.equal(out.datatype, spec.dtype, `${spec.name}: dtype`);
    assert.equal(out.shape[0], rows, `${spec.name}: one row per input row`);
    assert.equal(out.data.length, out.shape.reduce((a, b) => a * b, 1), `${spec.name}: data length`);
  }
});
