import assert from 'node:assert/strict';
import { join } from 'node:path';
import { test } from 'uvu';
import { parseJson } from '../helpers/cli.ts';
import { tempDir } from '../helpers/project.ts';
import { startServe, type Served } from '../serve/fixtures.ts';
import { buildEchoVersions, echoJson, inferRest, runConcurrently } from '../serve/versions-images.ts';
import { deploy, readWritten, SERVE_IMAGE } from './fixtures.ts';

/**
 * Several versions of one model in one Deployment: each version a container of the pod, the front routing them by
 * version with the split in its arguments. The front's arguments are then run for real: `pyml serve` with exactly
 * those flags (the socket paths moved to this machine) in front of the two versions' processes.
 */

let built: Awaited<ReturnType<typeof buildEchoVersions>>;
const running: Served[] = [];

test.before(async () => {
  built = await buildEchoVersions(['1', '2']);
});

test.after(async () => {
  for (const s of running.reverse()) await s.stop();
  await built?.cleanup();
});

// eslint-disable-next-line @typescript-eslint/no-explicit-any
type Obj = Record<string, any>;

test('two versions of echo: containers model-echo-v1/-v2 on their own sockets, versioned readiness, the split in the front\'s arguments', async () => {
  const r = await deploy([`${built.images['1']}=127.0.0.1:5000/models/echo`, `${built.images['2']}=127.0.0.1:5000/models/echo`, '--split', 'echo=1:90,2:10', '--serve-image', SERVE_IMAGE, '--json']);
  assert.equal(r.code, 0, r.stderr);
  const json = parseJson<{ models: { name: string }[] }>(r);
  assert.deepEqual(json.models.map((m) => m.name), ['echo', 'echo']);
  const w = await readWritten(r.out);
  const deployment = w.objects.find((o) => o.kind === 'Deployment')!;
  assert.equal(deployment.metadata.name, 'echo');
  const pod = deployment.spec.template.spec;
  assert.deepEqual(pod.containers.map((c: Obj) => c.name), ['serve', 'model-echo-v1', 'model-echo-v2']);
  const front = pod.containers[0];
  assert.deepEqual(front.command.slice(2, 8), ['--model', 'echo@1=unix:///sockets/echo@1.sock', '--model', 'echo@2=unix:///sockets/echo@2.sock', '--split', 'echo=1:90,2:10']);
  const [v1, v2] = pod.containers.slice(1);
  assert.deepEqual(v1.args, ['serve', '--socket', '/sockets/echo@1.sock']);
  assert.deepEqual(v2.args, ['serve', '--socket', '/sockets/echo@2.sock']);
  assert.equal(v1.readinessProbe.httpGet.path, '/v2/models/echo/versions/1/ready');
  assert.equal(v2.readinessProbe.httpGet.path, '/v2/models/echo/versions/2/ready');
  assert.notEqual(v1.image, v2.image, 'each version is its own digest');

  // The front's arguments, run: the model side of each version on its own socket, then `pyml serve` with them.
  const volume = await tempDir('pyml-deploy-sockets-');
  const sockets: Record<string, string> = {};
  for (const version of ['1', '2']) {
    const dir = join(volume, `v${version}`);
    running.push(await startServe([built.images[version], '--socket-dir', dir]));
    sockets[`/sockets/echo@${version}.sock`] = join(dir, 'echo.sock');
  }
  const args = (front.command as string[]).slice(2).filter((a, i, all) => a !== '--json' && !['--grpc', '--http'].includes(a) && !['--grpc', '--http'].includes(all[i - 1]))
    .map((a) => a.replace(/\/sockets\/echo@\d\.sock/, (s) => sockets[s]));
  const served = await startServe(args);
  running.push(served);
  assert.deepEqual(served.ready.models.map((m) => [m.name, (m as { version?: string }).version]), [['echo', '2'], ['echo', '1']]);
  const answers = await runConcurrently(2000, 16, () => inferRest(served.ready.http, '/v2/models/echo/infer', echoJson(1)));
  assert.deepEqual(answers.filter((a) => a.status !== 200), []);
  const onOne = answers.filter((a) => a.version === '1').length / answers.length;
  assert.ok(Math.abs(onOne - 0.9) <= 0.025, `version 1 answered ${onOne} of 2000, expected 0.9 ± 0.025`);
  assert.equal((await inferRest(served.ready.http, '/v2/models/echo/versions/2/infer', echoJson(1))).version, '2');
});

test('refused, naming what is wrong: a split of a version not deployed, one version twice, a model twice without versions', async () => {
  const badSplit = await deploy([`${built.images['1']}=127.0.0.1:5000/models/echo`, `${built.images['2']}=127.0.0.1:5000/models/echo`, '--split', 'echo=1:50,3:50', '--serve-image', SERVE_IMAGE]);
  assert.notEqual(badSplit.code, 0);
  assert.match(badSplit.stderr, /--split echo: version '3' is not deployed \(versions: 1, 2\)/);
  const twice = await deploy([`${built.images['1']}=127.0.0.1:5000/models/echo`, `${built.images['1']}=127.0.0.1:5000/models/echo-again`, '--serve-image', SERVE_IMAGE]);
  assert.notEqual(twice.code, 0);
  assert.match(twice.stderr, /version '1' of model 'echo' is deployed twice/);
  const digest = (c: string) => `127.0.0.1:5000/models/echo@sha256:${c.repeat(64)}`;
  const unnamed = await deploy([`echo=${digest('a')}`, `echo=${digest('b')}`, '--serve-image', SERVE_IMAGE]);
  assert.notEqual(unnamed.code, 0);
  assert.match(unnamed.stderr, /model 'echo' is deployed 2 times, but .* has no version .*NAME@VERSION=/);
  const named = await deploy([`echo@7=${digest('a')}`, `echo@8=${digest('b')}`, '--split', 'echo=7:1,8:1', '--serve-image', SERVE_IMAGE]);
  assert.equal(named.code, 0, named.stderr);
  const pod = (await readWritten(named.out)).objects.find((o) => o.kind === 'Deployment')!.spec.template.spec;
  assert.deepEqual(pod.containers.map((c: Obj) => c.name), ['serve', 'model-echo-v7', 'model-echo-v8']);
});

test.run();
