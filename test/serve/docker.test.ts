import { type ChildProcess, spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdir, rm } from 'node:fs/promises';
import { join } from 'node:path';
import Docker from 'dockerode';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { tempDir } from '../helpers/project.ts';
import { requireTool } from '../helpers/tools.ts';
import { type Served, type V2Client, buildImages, echoRequest, http, startServe, v2Client, waitFor } from './fixtures.ts';

/**
 * The docker runner against a real engine: a private dockerd (no iptables, no bridge) on a Unix socket, started
 * and stopped by pid. Images are loaded from a tarball and from a layout dir; containers get `--network none`
 * and the socket directory mounted in.
 */

let dir: string;
let dockerd: ChildProcess | undefined;
let docker: Docker;
let built: Awaited<ReturnType<typeof buildImages>>;
let served: Served | undefined;
let client: V2Client;

test.before(async () => {
  requireTool('dockerd', 'docker.io');
  dir = await tempDir('pyml-dockerd-');
  for (const d of ['data', 'exec']) await mkdir(join(dir, d));
  const socket = join(dir, 'docker.sock');
  dockerd = spawn('dockerd', ['--iptables=false', '--ip6tables=false', '--bridge=none', '--host', `unix://${socket}`,
    '--data-root', join(dir, 'data'), '--exec-root', join(dir, 'exec'), '--pidfile', join(dir, 'dockerd.pid')], { stdio: ['ignore', 'ignore', 'pipe'] });
  let log = '';
  dockerd.stderr!.on('data', (d: Buffer) => { log = (log + d.toString()).slice(-5000); });
  docker = new Docker({ socketPath: socket });
  await waitFor('dockerd to answer', async () => existsSync(socket) && (await docker.ping().then(() => true, () => false)), 30_000)
    .catch((error: Error) => { throw new Error(`${error.message}\ndockerd log:\n${log}`); });
  built = await buildImages(['iris', 'echo']);
  served = await startServe([`${built.images.iris}.tar`, built.images.echo, '--runner', 'docker'], { DOCKER_HOST: `unix://${socket}` });
  client = v2Client(served.ready.grpc);
});

test.after(async () => {
  client?.close();
  if (served) await served.stop();
  if (dockerd && dockerd.exitCode === null) {
    const exited = new Promise((r) => dockerd!.once('exit', r));
    dockerd.kill('SIGTERM');
    await exited;
  }
  await built?.cleanup();
  if (dir) await rm(dir, { recursive: true, force: true });
});

test('models run as containers with no network and the socket directory mounted', async () => {
  for (const m of served!.ready.models) assert.is(m.state, 'ready', `${m.name}: ${m.error}`);
  const containers = await docker.listContainers({ filters: { label: ['dev.pyml.serve.model'] } });
  assert.equal(containers.map((c) => c.Labels['dev.pyml.serve.model']).sort(), ['echo', 'iris']);
  for (const c of containers) {
    const info = await docker.getContainer(c.Id).inspect();
    assert.is(info.HostConfig.NetworkMode, 'none');
    assert.ok(info.Mounts.some((m) => m.Source === served!.ready.socketDir), JSON.stringify(info.Mounts));
  }
  // Both load paths: the tarball as it is, the layout dir streamed as a docker-archive.
  const tags = (await docker.listImages()).flatMap((i) => i.RepoTags ?? []);
  assert.ok(tags.includes('iris:1.0.0') && tags.includes('echo:0.1.0'), tags.join(', '));
});

test('gRPC and HTTP requests are served by the containers', async () => {
  const res = await client.call('ModelInfer', { model_name: 'iris', inputs: [{ name: 'input', datatype: 'FP32', shape: [2, 4], contents: { fp32_contents: [5.1, 3.5, 1.4, 0.2, 6.7, 3.0, 5.2, 2.3] } }] });
  assert.equal(res.outputs[1].contents.int64_contents, ['0', '2']);
  const h = await http(served!.ready.http, '/v2/models/echo/infer', { inputs: [{ name: 'x', datatype: 'FP32', shape: [1, 2], data: [4, 0] }] });
  assert.equal(h.body.outputs[0].data, [4, 0]);
});

test('a container killed with SIGKILL is replaced; the other model keeps serving', async () => {
  const pid = served!.ready.models.find((m) => m.name === 'echo')!.pid!;
  assert.ok(pid > 0);
  const slow = client.call('ModelInfer', echoRequest([[1, 10_000]]), 30_000).then(() => 'ok', (e: { code: number; details: string }) => `${e.code} ${e.details}`);
  await new Promise((r) => setTimeout(r, 300));
  const killedAt = Date.now();
  process.kill(pid, 'SIGKILL');
  // UNAVAILABLE, whether the engine reports the exit or the socket drops first.
  assert.match(await slow, /^14 /);
  assert.ok(Date.now() - killedAt < 3000);
  assert.equal((await client.call('ModelInfer', { model_name: 'iris', inputs: [{ name: 'input', datatype: 'FP32', shape: [1, 4], contents: { fp32_contents: [5.1, 3.5, 1.4, 0.2] } }] })).outputs[1].contents.int64_contents, ['0']);
  // The engine reports the exit a little after the socket drops; calls in that gap fail fast with UNAVAILABLE too.
  await waitFor('the restart to be counted', async () => /pyml_model_restarts_total\{model="echo",version="0.1.0"\} 1/.test((await http(served!.ready.http, '/metrics')).text), 15_000);
  await waitFor('echo back', async () => (await client.call('ModelReady', { name: 'echo', version: '' })).ready === true, 30_000);
  assert.equal((await client.call('ModelInfer', echoRequest([[9, 0]]))).outputs[0].contents.fp32_contents, [9, 0]);
});

test('stopping serve removes its containers', async () => {
  assert.is(await served!.stop(), 0);
  served = undefined;
  const left = await docker.listContainers({ all: true, filters: { label: ['dev.pyml.serve.model'] } });
  assert.is(left.length, 0);
});

test('kill -9 of pyml serve: its containers stop (stdin lifeline) and the next serve on this host removes them', async () => {
  const socket = join(dir, 'docker.sock');
  const keeper = await startServe([built.images.echo, '--runner', 'docker'], { DOCKER_HOST: `unix://${socket}` });
  const doomed = await startServe([built.images.echo, '--runner', 'docker'], { DOCKER_HOST: `unix://${socket}` });
  const owned = (pid = doomed.ready.pid) => docker.listContainers({ all: true, filters: { label: [`dev.pyml.serve.pid=${pid}`] } });
  const [container] = await owned();
  assert.ok(container, 'the doomed serve has a container');
  assert.is(container.State, 'running');
  doomed.child.kill('SIGKILL');
  await waitFor('the orphaned container to stop', async () => (await owned()).every((c) => c.State !== 'running'), 30_000);
  const next = await startServe([built.images.echo, '--runner', 'docker'], { DOCKER_HOST: `unix://${socket}` });
  try {
    assert.equal(await owned(), [], 'the orphan was removed');
    assert.equal((await owned(keeper.ready.pid)).map((c) => c.State), ['running'], 'a live serve\'s container is left alone');
  } finally {
    await next.stop();
    await keeper.stop();
  }
});

test.run();
