import assert from 'node:assert/strict';
import { readdir, readFile } from 'node:fs/promises';
import path from 'node:path';
import { test } from 'uvu';
import { openImage, unpack } from '@pyml/image';
import { pyml, runProcess } from '../helpers/cli.ts';
import { tempDir } from '../helpers/project.ts';

/**
 * The pyml-serve image's program is an entry file and the chunks its dynamic imports load. The Docker runner's
 * and the engine reader's chunks import dockerode, which the image does not ship (no esbuild stub stands in for
 * them): serving runs without it, and `--runner docker` says what to do instead.
 */
test('the pyml-serve image serves without dockerode and refuses --runner docker with a clear error', async () => {
  const dir = await tempDir('serve-image-');
  const built = await pyml(['deploy', 'serve-image', '--out', path.join(dir, 'layout')]);
  assert.equal(built.code, 0, built.stderr);
  const image = await openImage(path.join(dir, 'layout'));
  const root = path.join(dir, 'root');
  await unpack(image, root);
  await image.close();
  const program = path.join(root, 'opt/pyml-serve');
  const chunks = await readdir(path.join(program, 'chunks'));
  const importsDockerode = /from\s*"dockerode"|import\(\s*"dockerode"\s*\)/;
  const withDockerode = [];
  for (const chunk of chunks) if (importsDockerode.test(await readFile(path.join(program, 'chunks', chunk), 'utf8'))) withDockerode.push(chunk);
  assert.ok(withDockerode.some((c) => c.startsWith('docker-runner-')), `the Docker runner's chunk imports dockerode: ${chunks.join(', ')}`);
  assert.ok(!importsDockerode.test(await readFile(path.join(program, 'pyml.mjs'), 'utf8')), 'the entry file does not import dockerode');
  // The image's own node (this machine's), outside any node_modules: dockerode cannot be found from there.
  const node = path.join(root, 'usr/local/bin/node');
  const help = await runProcess(node, [path.join(program, 'pyml.mjs'), 'serve', '--help'], { cwd: root });
  assert.equal(help.code, 0, help.stderr);
  assert.match(help.stdout, /Usage: pyml serve/);
  const docker = await runProcess(node, [path.join(program, 'pyml.mjs'), 'serve', path.join(dir, 'layout'), '--runner', 'docker'], { cwd: root });
  assert.equal(docker.code, 2, docker.stderr);
  assert.match(docker.stderr, /--runner docker needs the Docker engine client \(dockerode\)/);
});

test.run();
