import { cp, mkdtemp, rm, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { pyml, REPO } from '../helpers/cli.ts';

/**
 * `pyml build --reproducible-check`: two builds from fresh empty caches. A project that is deterministic passes
 * and says its digest; one whose plugin writes the time into a layer fails with exit 1, naming that layer and file.
 */

let work: string;

test.before(async () => {
  work = await mkdtemp(join(tmpdir(), 'pyml-reproducible-check-'));
});

test.after(async () => {
  await rm(work, { recursive: true, force: true });
});

async function irisCopy(name: string): Promise<string> {
  const dir = join(work, name);
  await cp(join(REPO, 'examples', 'onnx-iris'), dir, { recursive: true, filter: (src) => !src.includes('/.pyml') });
  await symlink(join(REPO, 'node_modules'), join(dir, 'node_modules'));
  return dir;
}

test('a deterministic project passes, naming the digest both builds gave', async () => {
  const project = await irisCopy('iris');
  const r = await pyml(['build', project, '--out', join(work, 'iris-out'), '--reproducible-check']);
  assert.is(r.code, 0, r.stderr);
  const digest = /reproducible: two builds from empty caches gave (sha256:[0-9a-f]{64})/.exec(r.stdout)?.[1];
  assert.ok(digest, r.stdout);
  assert.match(r.stdout, `digest  ${digest}`, 'the build asked for follows, with the same digest');
});

test('a plugin that writes the time into its layer fails the check, naming the layer and the file', async () => {
  const project = await irisCopy('stamped');
  // A plugin of the project's own, as a user might write one: its layer holds the build's time.
  await writeFile(join(project, 'pyml.config.ts'), `import { defineConfig } from '@pyml/core';
import onnx from '@pyml/plugin-onnx';

export default defineConfig({
  name: 'iris',
  version: '1.0.0',
  model: './src/model.ts',
  kind: 'tensor',
  weights: ['./weights/model.onnx'],
  plugins: [onnx(), {
    name: 'stamp',
    dependencies: () => [{ name: 'stamp', entries: [], files: [
      { path: '/opt/stamp', directory: true },
      { path: '/opt/stamp/built-at.txt', content: \`\${Date.now()} \${process.hrtime.bigint()}\\n\` },
    ] }],
  }],
});
`);
  const r = await pyml(['build', project, '--out', join(work, 'stamped-out'), '--reproducible-check']);
  assert.is(r.code, 1, `exit 1 expected:\n${r.stdout}\n${r.stderr}`);
  assert.match(r.stderr, /not reproducible: two builds from empty caches gave sha256:[0-9a-f]{64} and sha256:[0-9a-f]{64}/);
  assert.match(r.stderr, /layer 2 \(deps stamp\): file "opt\/stamp\/built-at.txt" differs: content \(sha256 [0-9a-f]{16}… vs [0-9a-f]{16}…\)/);
  assert.not.match(r.stdout, 'digest', 'no image is built when the check fails');
});

test.run();
