import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { pyml } from '../helpers/cli.ts';
import { tempDir } from '../helpers/project.ts';
import { startRegistry, type RegistryServer } from '../helpers/registry-server.ts';
import { requireTool } from '../helpers/tools.ts';
import { http, startServe, waitFor, type Served } from './fixtures.ts';
import { buildEchoVersions, echoJson, inferRest } from './versions-images.ts';

/**
 * A repository entry that is a registry reference (`echo.ref` holding HOST/models/echo:live): pulled at start, and
 * again at each poll, so pushing version 2 to the tag swaps it in and retires version 1, without a restart.
 */

let registry: RegistryServer;
let built: Awaited<ReturnType<typeof buildEchoVersions>>;
let served: Served | undefined;

test.before(async () => {
  requireTool('docker-registry');
  registry = await startRegistry();
  built = await buildEchoVersions(['1', '2']);
});

test.after(async () => {
  await served?.stop();
  await registry?.stop();
  await built?.cleanup();
});

test('a *.ref entry follows its tag: version 2 pushed to it replaces version 1 at the next poll', async () => {
  const ref = `${registry.host}/models/echo:live`;
  const push = async (version: string) => {
    const r = await pyml(['push', built.images[version], ref, '--json']);
    assert.is(r.code, 0, r.stderr);
  };
  await push('1');
  const dir = await tempDir('pyml-repository-refs-');
  await writeFile(join(dir, 'echo.ref'), `# the live echo model\n${ref}\n`);
  await writeFile(join(dir, 'empty.ref'), '# nothing here yet\n');
  served = await startServe(['--repository', dir, '--poll-s', '1']);
  assert.is((await inferRest(served.ready.http, '/v2/models/echo/infer', echoJson(1))).version, '1');
  const index = (await http(served.ready.http, '/v2/repository/index', {})).body;
  assert.equal(index.find((r: { name: string }) => r.name === 'empty.ref')?.reason, `${join(dir, 'empty.ref')}: holds no image reference (one HOST/REPO:TAG or HOST/REPO@sha256:… line)`);

  await push('2');
  await waitFor('version 2 to answer', async () => (await inferRest(served!.ready.http, '/v2/models/echo/infer', echoJson(1))).version === '2', 30_000);
  await waitFor('version 1 to leave the index', async () => !(await http(served!.ready.http, '/v2/repository/index', {})).body.some((r: { version: string }) => r.version === '1'), 15_000);
  const v1 = await inferRest(served.ready.http, '/v2/models/echo/versions/1/infer', echoJson(1));
  assert.is(v1.status, 404);
  assert.match(served.stderr(), /"msg":"model version loaded".*"version":"2"/);
  assert.match(served.stderr(), /"msg":"model version stopped".*"version":"1"/);
});

test.run();
