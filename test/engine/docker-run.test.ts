import { join } from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { type CliResult, runProcess } from '../helpers/cli.ts';
import { type DockerEngine, startDockerd } from '../helpers/dockerd.ts';
import { freePort } from '../helpers/registry-server.ts';
import { requireTool } from '../helpers/tools.ts';
import { type Served, buildImages, echoRequest, http, startServe, v2Client, waitFor } from '../serve/fixtures.ts';

/**
 * Built images as a Docker user runs them: `docker load`, then `docker run` with the image's own default command,
 * on a private engine (no bridge, so host networking; the ports come from PYML_HTTP / PYML_GRPC because 8000 and
 * 8001 may be taken on this machine). REST and gRPC answer, the image's health check turns healthy, and
 * `docker stop` lets in-flight calls finish. And the other side: pyml serve's model processes get the host's
 * PYML_* variables but never bind those ports.
 */

let engine: DockerEngine;
let built: Awaited<ReturnType<typeof buildImages>>;
const containers: string[] = [];

async function docker(args: string[]): Promise<CliResult> {
  return runProcess('docker', args, { env: engine.env });
}

async function dockerOk(args: string[]): Promise<string> {
  const r = await docker(args);
  if (r.code !== 0) throw new Error(`docker ${args.join(' ')} failed (${r.code}): ${r.stderr}${r.stdout}`);
  return r.stdout.trim();
}

/** `docker run -d --network host` with the given env and (optional) command; remembered for cleanup. */
async function run(image: string, env: Record<string, string>, command: string[] = []): Promise<string> {
  const id = await dockerOk(['run', '-d', '--network', 'host', ...Object.entries(env).flatMap(([k, v]) => ['-e', `${k}=${v}`]), image, ...command]);
  containers.push(id);
  return id;
}

/** Rows the echo model says it is holding (its stderr line for a slow call); batched calls count once each row. */
function rowsHeld(log: string): number {
  return [...log.matchAll(/echo: holding (\d+) rows/g)].reduce((sum, m) => sum + Number(m[1]), 0);
}

async function inspect(id: string): Promise<{ State: { Status: string; ExitCode: number; Health?: { Status: string; Log: { ExitCode: number; Output: string }[] } } }> {
  return JSON.parse(await dockerOk(['inspect', id]))[0];
}

async function waitReady(base: string, id: string): Promise<void> {
  await waitFor(`REST on ${base} to be ready`, async () => {
    const state = (await inspect(id)).State;
    if (state.Status === 'exited') throw new Error(`container exited (${state.ExitCode}): ${(await docker(['logs', id])).stderr}`);
    return fetch(`http://${base}/v2/health/ready`).then((r) => r.status === 200, () => false);
  }, 60_000);
}

const IRIS_ROWS = { inputs: [{ name: 'input', datatype: 'FP32', shape: [2, 4], data: [5.1, 3.5, 1.4, 0.2, 6.7, 3.0, 5.2, 2.3] }] };

test.before(async () => {
  requireTool('skopeo');
  // No skip: an engine that cannot start fails the area with dockerd's own words.
  engine = await startDockerd().catch((error: Error) => {
    throw new Error(`test/engine needs a private Docker engine (apt-get install docker.io; run as root): ${error.message}`);
  });
  built = await buildImages(['iris', 'echo']);
  await dockerOk(['load', '-i', `${built.images.iris}.tar`]);
  // The echo layout through skopeo (which must accept the config's Docker fields) into a docker-archive.
  const echoTar = join(built.dir, 'echo.tar');
  const copy = await runProcess('skopeo', ['copy', '--quiet', `oci:${built.images.echo}`, `docker-archive:${echoTar}:echo:0.1.0`]);
  assert.is(copy.code, 0, copy.stderr);
  await dockerOk(['load', '-i', echoTar]);
});

test.after(async () => {
  for (const id of containers) await docker(['rm', '-f', id]).catch(() => {});
  await engine?.stop();
  await built?.cleanup();
});

test('the image config: default command with --default-ports, ports 8000 and 8001 exposed, a health check', async () => {
  const config = JSON.parse(await dockerOk(['image', 'inspect', 'iris:1.0.0']))[0].Config;
  assert.equal(config.Cmd, ['serve', '--socket', '/run/pyml/model.sock', '--default-ports']);
  assert.equal(Object.keys(config.ExposedPorts).sort(), ['8000/tcp', '8001/tcp']);
  assert.equal(config.Healthcheck.Test, ['CMD', ...config.Entrypoint, 'health']);
  assert.ok(config.Healthcheck.Interval > 0 && config.Healthcheck.Retries > 0, JSON.stringify(config.Healthcheck));
  const raw = JSON.parse((await runProcess('skopeo', ['inspect', '--config', `oci:${built.images.iris}`])).stdout);
  assert.equal(raw.config.ExposedPorts, { '8000/tcp': {}, '8001/tcp': {} });
});

test('docker run: REST and gRPC answer on PYML_HTTP / PYML_GRPC, and the health check turns healthy', async () => {
  const [httpPort, grpcPort] = [await freePort(), await freePort()];
  const id = await run('iris:1.0.0', { PYML_HTTP: `127.0.0.1:${httpPort}`, PYML_GRPC: `127.0.0.1:${grpcPort}` });
  const base = `127.0.0.1:${httpPort}`;
  await waitReady(base, id);
  const rest = await http(base, '/v2/models/iris/infer', IRIS_ROWS);
  assert.is(rest.status, 200, rest.text);
  assert.equal(rest.body.outputs[1].data, [0, 2]);
  const client = v2Client(`127.0.0.1:${grpcPort}`);
  try {
    const res = await client.call('ModelInfer', { model_name: 'iris', inputs: [{ name: 'input', datatype: 'FP32', shape: [2, 4], contents: { fp32_contents: IRIS_ROWS.inputs[0].data } }] });
    assert.equal(res.outputs[1].contents.int64_contents, ['0', '2']);
  } finally {
    client.close();
  }
  // Engines before Docker 25 probe every Interval (10 s) even in the start period.
  await waitFor('the health status to be healthy', async () => {
    const health = (await inspect(id)).State.Health;
    if (health?.Status === 'unhealthy') throw new Error(`unhealthy: ${JSON.stringify(health.Log)}`);
    return health?.Status === 'healthy';
  }, 60_000);
  const log = (await inspect(id)).State.Health!.Log.at(-1)!;
  assert.is(log.ExitCode, 0);
  assert.match(log.Output, `healthy: http://127.0.0.1:${httpPort}/v2/health/ready answered 200`);
});

test('explicit flags win over PYML_HTTP; without --default-ports the environment binds nothing', async () => {
  const [envPort, flagPort, grpcPort] = [await freePort(), await freePort(), await freePort()];
  const id = await run('iris:1.0.0', { PYML_HTTP: `127.0.0.1:${envPort}`, PYML_GRPC: `127.0.0.1:${grpcPort}` },
    ['serve', '--socket', '/run/pyml/model.sock', '--default-ports', '--http', `127.0.0.1:${flagPort}`]);
  await waitReady(`127.0.0.1:${flagPort}`, id);
  assert.is(await fetch(`http://127.0.0.1:${envPort}/v2/health/ready`).then(() => 'answered', () => 'refused'), 'refused');
  // A socket-only command (what pyml serve's and Kubernetes' model containers run) ignores PYML_HTTP/PYML_GRPC.
  const [p1, p2] = [await freePort(), await freePort()];
  const bare = await run('iris:1.0.0', { PYML_HTTP: `127.0.0.1:${p1}`, PYML_GRPC: `127.0.0.1:${p2}` }, ['serve', '--socket', '/tmp/model.sock']);
  await waitFor('the socket-only server to say it serves', async () => (await docker(['logs', bare])).stdout.includes('"ready":true'), 60_000);
  const ready = JSON.parse((await docker(['logs', bare])).stdout.trim().split('\n')[0]);
  assert.equal(Object.keys(ready).sort(), ['pid', 'ready', 'socket']);
  for (const p of [p1, p2]) assert.is(await fetch(`http://127.0.0.1:${p}/`).then(() => 'answered', () => 'refused'), 'refused');
});

test('docker stop drains: in-flight REST and gRPC calls finish, the container exits 0', async () => {
  const [httpPort, grpcPort] = [await freePort(), await freePort()];
  const id = await run('echo:0.1.0', { PYML_HTTP: `127.0.0.1:${httpPort}`, PYML_GRPC: `127.0.0.1:${grpcPort}` });
  const base = `127.0.0.1:${httpPort}`;
  await waitReady(base, id);
  const client = v2Client(`127.0.0.1:${grpcPort}`);
  try {
    // Each call sleeps 2 s in the model; docker stop comes while both are in flight.
    const grpcCall = client.call('ModelInfer', echoRequest([[7, 2000]]), 30_000).then((r) => r.outputs[0].contents.fp32_contents, (e: Error) => `failed: ${e.message}`);
    const restCall = http(base, '/v2/models/echo/infer', { inputs: [{ name: 'x', datatype: 'FP32', shape: [1, 2], data: [9, 2000] }] })
      .then((r) => (r.status === 200 ? r.body.outputs[0].data : `status ${r.status}: ${r.text}`), (e: Error) => `failed: ${e.message}`);
    await waitFor('both calls to reach the model', async () => rowsHeld((await docker(['logs', id])).stderr) === 2, 15_000);
    const stopped = Date.now();
    await dockerOk(['stop', '-t', '30', id]);
    assert.equal(await grpcCall, [7, 2000]);
    assert.equal(await restCall, [9, 2000]);
    const state = (await inspect(id)).State;
    assert.is(state.ExitCode, 0, `exit ${state.ExitCode}; logs: ${(await docker(['logs', id])).stderr}`);
    assert.ok(Date.now() - stopped < 20_000, 'docker stop waited for its timeout instead of the drain');
    assert.match((await docker(['logs', id])).stderr, '"draining"');
  } finally {
    client.close();
  }
});

test("pyml serve's model processes get the host's PYML_HTTP / PYML_GRPC but bind neither (two models, one host)", async () => {
  const [p1, p2] = [await freePort(), await freePort()];
  let served: Served | undefined;
  try {
    served = await startServe([built.images.iris, built.images.echo, '--runner', 'embedded'], { PYML_HTTP: `127.0.0.1:${p1}`, PYML_GRPC: `127.0.0.1:${p2}` });
    for (const m of served.ready.models) assert.is(m.state, 'ready', `${m.name}: ${m.error}`);
    const h = await http(served.ready.http, '/v2/models/iris/infer', IRIS_ROWS);
    assert.is(h.status, 200, h.text);
    for (const p of [p1, p2]) assert.is(await fetch(`http://127.0.0.1:${p}/`).then(() => 'answered', () => 'refused'), 'refused');
  } finally {
    await served?.stop();
  }
});

test("pyml serve --runner docker: its containers run socket-only with the image's health check off", async () => {
  const [p1, p2] = [await freePort(), await freePort()];
  let served: Served | undefined;
  try {
    served = await startServe([`${built.images.iris}.tar`, '--runner', 'docker'], { ...engine.env, PYML_HTTP: `127.0.0.1:${p1}`, PYML_GRPC: `127.0.0.1:${p2}` });
    for (const m of served.ready.models) assert.is(m.state, 'ready', `${m.name}: ${m.error}`);
    const h = await http(served.ready.http, '/v2/models/iris/infer', IRIS_ROWS);
    assert.is(h.status, 200, h.text);
    const ids = (await dockerOk(['ps', '-q', '--filter', 'label=dev.pyml.serve.model=iris'])).split('\n').filter(Boolean);
    assert.is(ids.length, 1);
    const info = JSON.parse(await dockerOk(['inspect', ids[0]]))[0];
    assert.equal(info.Config.Healthcheck.Test, ['NONE']);
    assert.equal(info.Config.Cmd, ['serve', '--socket', info.Config.Cmd[2]]);
    for (const p of [p1, p2]) assert.is(await fetch(`http://127.0.0.1:${p}/`).then(() => 'answered', () => 'refused'), 'refused');
  } finally {
    await served?.stop();
  }
});

test.run();
