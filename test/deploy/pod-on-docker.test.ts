import assert from 'node:assert/strict';
import { createReadStream } from 'node:fs';
import { chmod, chown, readFile, stat } from 'node:fs/promises';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import Docker from 'dockerode';
import yaml from 'js-yaml';
import type { IContainer } from 'kubernetes-models/v1/Container';
import type { IPodSpec } from 'kubernetes-models/v1/PodSpec';
import { test } from 'uvu';
import { parseJson, pyml, runProcess } from '../helpers/cli.ts';
import { startDockerd, type DockerEngine } from '../helpers/dockerd.ts';
import { copyExample, tempDir } from '../helpers/project.ts';
import { startServe, v2Client, type Served } from '../serve/fixtures.ts';

/**
 * Issue 11 item 4: the pod `pyml deploy k8s` writes, run on a real Docker engine. Containers are started from the
 * Deployment's own container specs (image by content id, command/args, user, read-only root, no capabilities).
 * First the model container alone, with the front's command run as a host process; then the whole pod as
 * containers: the init container, the front (the pyml-serve image) and the model, sharing a Docker volume as the
 * emptyDir. Docker has no pod network namespace: the model runs with --network none, the front on the host
 * network bound to 127.0.0.1.
 */

let engine: DockerEngine;
let docker: Docker;
let imageId: string;
let serveImageId: string;
let pod: IPodSpec;
let front: Served | undefined;
const containerIds: string[] = [];

test.before(async () => {
  engine = await startDockerd();
  docker = new Docker({ socketPath: engine.socket });
  const project = await copyExample('onnx-iris');
  const out = await tempDir('pyml-deploy-build-');
  const built = await pyml(['build', project, '--out', path.join(out, 'layout'), '--tar', path.join(out, 'iris.tar'), '--json']);
  assert.equal(built.code, 0, built.stderr);
  // Loaded from the tarball by the engine API (dockerode), as a cluster node would pull it.
  const stream = await docker.loadImage(createReadStream(path.join(out, 'iris.tar')));
  await new Promise<void>((resolve, reject) => docker.modem.followProgress(stream, (e: Error | null) => (e ? reject(e) : resolve())));
  imageId = (await docker.getImage('iris:1.0.0').inspect()).Id;
  const serve = await pyml(['deploy', 'serve-image', '--out', path.join(out, 'serve'), '--tar', path.join(out, 'serve.tar'), '--json']);
  assert.equal(serve.code, 0, serve.stderr);
  const serveStream = await docker.loadImage(createReadStream(path.join(out, 'serve.tar')));
  await new Promise<void>((resolve, reject) => docker.modem.followProgress(serveStream, (e: Error | null) => (e ? reject(e) : resolve())));
  serveImageId = (await docker.getImage(parseJson<{ refName: string }>(serve).refName).inspect()).Id;

  const manifests = path.join(out, 'k8s');
  const r = await pyml(['deploy', 'k8s', `${path.join(out, 'layout')}=127.0.0.1:5000/models/iris`, '--serve-image', `${path.join(out, 'serve')}=127.0.0.1:5000/pyml-serve`, '--out', manifests, '--json']);
  assert.equal(r.code, 0, r.stderr);
  const deployed = parseJson<{ models: { name: string; image: string }[]; serveImage: string }>(r);
  assert.equal(deployed.models[0].image, `127.0.0.1:5000/models/iris@${parseJson<{ digest: string }>(built).digest}`);
  assert.equal(deployed.serveImage, `127.0.0.1:5000/pyml-serve@${parseJson<{ digest: string }>(serve).digest}`);
  const deployment = yaml.load(await readFile(path.join(manifests, 'deployment-iris.yaml'), 'utf8')) as { spec: { template: { spec: IPodSpec } } };
  pod = deployment.spec.template.spec;
});

test.after(async () => {
  await front?.stop();
  for (const id of containerIds) await docker.getContainer(id).remove({ force: true }).catch(() => {});
  await engine?.stop();
});

/** `docker run` options for a container of the pod, from its spec: the same volumes, user and isolation. */
function hostConfigFor(c: IContainer, sockets: string, network = 'none'): Docker.HostConfig {
  const binds: string[] = [];
  const tmpfs: Record<string, string> = {};
  for (const m of c.volumeMounts ?? []) {
    const volume = pod.volumes!.find((v) => v.name === m.name)!;
    assert.ok(volume.emptyDir, `volume ${m.name} is an emptyDir`);
    if (m.name === 'sockets') binds.push(`${sockets}:${m.mountPath}`); // a host directory or a Docker volume
    else tmpfs[m.mountPath] = 'rw,size=64m';
  }
  return {
    NetworkMode: network,
    Binds: binds,
    Tmpfs: tmpfs,
    ReadonlyRootfs: c.securityContext?.readOnlyRootFilesystem === true,
    CapDrop: c.securityContext?.capabilities?.drop,
    CapAdd: c.securityContext?.capabilities?.add,
    SecurityOpt: c.securityContext?.allowPrivilegeEscalation === false ? ['no-new-privileges'] : [],
  };
}

function userFor(c: IContainer): string {
  return `${c.securityContext?.runAsUser ?? pod.securityContext!.runAsUser}:${c.securityContext?.runAsGroup ?? pod.securityContext!.runAsGroup}`;
}

async function inferIris(http: string): Promise<void> {
  const res = await fetch(`${http}/v2/models/iris/infer`, {
    method: 'POST', headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ inputs: [{ name: 'input', datatype: 'FP32', shape: [2, 4], data: [5.1, 3.5, 1.4, 0.2, 6.7, 3.0, 5.2, 2.3] }] }),
  });
  const body = await res.json() as { outputs: { name: string; data: number[] }[] };
  assert.equal(res.status, 200, JSON.stringify(body));
  const byName = Object.fromEntries(body.outputs.map((o) => [o.name, o]));
  assert.deepEqual(byName.label.data.map(Number), [0, 2], 'setosa, virginica');
  const p = byName.probabilities.data;
  assert.ok(Math.abs(p[0] + p[1] + p[2] - 1) < 1e-4 && p[0] > 0.9 && p[5] > 0.5, `probabilities ${p}`);
}

test('the pod runs on a Docker engine: model container on --network none, front over the shared socket directory', async () => {
  const sockets = await tempDir('pyml-pod-');
  // What the init container does to the emptyDir: the pod user's own, mode 0700.
  const user = pod.securityContext!.runAsUser!;
  const group = pod.securityContext!.runAsGroup!;
  await chown(sockets, user, group);
  await chmod(sockets, 0o700);

  const modelSpec = pod.containers.find((c) => c.name === 'model-iris')!;
  assert.deepEqual(modelSpec.ports, undefined);
  const container = await docker.createContainer({
    name: `pyml-deploy-test-${process.pid}`,
    Image: imageId,
    Cmd: modelSpec.args, // the image's own Entrypoint stays
    User: `${user}:${group}`,
    NetworkDisabled: true,
    HostConfig: hostConfigFor(modelSpec, sockets),
  });
  containerIds.push(container.id);
  await container.start();
  const info = await container.inspect();
  assert.equal(info.HostConfig.NetworkMode, 'none');
  assert.deepEqual(Object.keys(info.NetworkSettings.Ports ?? {}), []);
  assert.equal(info.Config.User, `${user}:${group}`);

  // The front container's command, with the pod's /sockets where the bind mount's host side is.
  const frontSpec = pod.containers.find((c) => c.name === 'serve')!;
  const [verb, ...args] = frontSpec.command!.slice(1);
  assert.equal(verb, 'serve');
  const hostArgs: string[] = [];
  for (let i = 0; i < args.length; i++) {
    if (args[i] === '--grpc' || args[i] === '--http') { i++; continue; } // startServe picks 127.0.0.1 ports
    if (args[i] === '--json') continue;
    hostArgs.push(args[i].replace('unix:///sockets/', `unix://${sockets}/`));
  }
  assert.deepEqual(hostArgs, ['--model', `iris=unix://${sockets}/iris.sock`]);
  front = await startServe(hostArgs);
  const http = `http://${front.ready.http}`;

  // The probes as the manifest writes them, against the real front.
  const ready = frontSpec.readinessProbe!.grpc!;
  const grpc = v2Client(front.ready.grpc);
  try {
    const deadline = Date.now() + 90_000;
    for (;;) {
      const status = (await grpc.health(ready.service).catch(() => ({ status: 'ERROR' }))).status;
      if (status === 'SERVING') break;
      if (Date.now() > deadline) {
        const logs = await container.logs({ stdout: true, stderr: true });
        throw new Error(`the pod did not become ready in 90 s (health ${status}); model container:\n${logs.toString()}\nfront:\n${front.stderr()}`);
      }
      await sleep(250);
    }
  } finally {
    grpc.close();
  }
  const socket = await stat(path.join(sockets, 'iris.sock'));
  assert.ok(socket.isSocket());
  assert.equal(socket.uid, user, 'the model container created its socket as the pod user');
  const live = await fetch(`${http}${frontSpec.livenessProbe!.httpGet!.path}`);
  assert.equal(live.status, 200);
  const modelReady = await fetch(`${http}${modelSpec.readinessProbe!.httpGet!.path}`);
  assert.equal(modelReady.status, 200);

  await inferIris(http);

  // The model container stops on SIGTERM (drains, exits 0), and the front reports it gone.
  await container.stop({ t: 20 });
  assert.equal((await container.inspect()).State.ExitCode, 0);
  const deadline = Date.now() + 10_000;
  let after = await fetch(`${http}/v2/health/ready`);
  while (after.status === 200 && Date.now() < deadline) {
    await sleep(200);
    after = await fetch(`${http}/v2/health/ready`);
  }
  assert.notEqual(after.status, 200, 'the pod is not ready once its model container has stopped');
  assert.equal(await front.stop(), 0);
  front = undefined;
  const left = await runProcess('docker', ['ps', '-q'], { env: engine.env });
  assert.equal(left.stdout.trim(), '');
});

test('the whole pod as containers: init container, pyml-serve front and model sharing a volume', async () => {
  const volume = `pyml-sockets-${process.pid}`;
  await docker.createVolume({ Name: volume });
  const run = async (name: string, image: string, c: IContainer, network: string, cmd: string[] | undefined, entrypoint?: string[]) => {
    const container = await docker.createContainer({
      name: `pyml-deploy-${name}-${process.pid}`, Image: image, User: userFor(c), NetworkDisabled: network === 'none',
      ...(entrypoint ? { Entrypoint: entrypoint } : {}), ...(cmd ? { Cmd: cmd } : {}),
      HostConfig: hostConfigFor(c, volume, network),
    });
    containerIds.push(container.id);
    await container.start();
    return container;
  };
  // The init container: the emptyDir (here a fresh volume, root-owned) becomes the pod user's, mode 0700.
  const initSpec = pod.initContainers![0];
  assert.equal(initSpec.image, pod.containers[0].image, 'the init step runs in the serve image');
  const init = await run('init', serveImageId, initSpec, 'none', initSpec.command!.slice(1), [initSpec.command![0]]);
  const initExit = await init.wait();
  assert.equal(initExit.StatusCode, 0, (await init.logs({ stdout: true, stderr: true })).toString());
  const user = pod.securityContext!.runAsUser!;

  const modelSpec = pod.containers.find((c) => c.name === 'model-iris')!;
  const model = await run('model', imageId, modelSpec, 'none', modelSpec.args);

  const { freePort } = await import('../helpers/registry-server.ts');
  const [grpcPort, httpPort] = [await freePort(), await freePort()];
  const frontSpec = pod.containers.find((c) => c.name === 'serve')!;
  // The front's command, but bound to 127.0.0.1 on the host network instead of 0.0.0.0 in the pod's.
  const command = frontSpec.command!.map((a) => a.replace('0.0.0.0:8001', `127.0.0.1:${grpcPort}`).replace('0.0.0.0:8000', `127.0.0.1:${httpPort}`));
  assert.equal(command[0], 'pyml');
  const frontContainer = await run('front', serveImageId, frontSpec, 'host', command.slice(1), [command[0]]);
  const http = `http://127.0.0.1:${httpPort}`;
  const logs = async () => `front:\n${(await frontContainer.logs({ stdout: true, stderr: true })).toString()}\nmodel:\n${(await model.logs({ stdout: true, stderr: true })).toString()}`;

  const grpc = v2Client(`127.0.0.1:${grpcPort}`);
  try {
    const deadline = Date.now() + 90_000;
    for (;;) {
      const status = (await grpc.health(frontSpec.readinessProbe!.grpc!.service).catch(() => ({ status: 'ERROR' }))).status;
      if (status === 'SERVING') break;
      if (Date.now() > deadline) throw new Error(`the pod did not become ready in 90 s (health ${status});\n${await logs()}`);
      await sleep(250);
    }
  } finally {
    grpc.close();
  }
  assert.equal((await fetch(`${http}${frontSpec.livenessProbe!.httpGet!.path}`)).status, 200);
  assert.equal((await fetch(`${http}${modelSpec.readinessProbe!.httpGet!.path}`)).status, 200);
  await inferIris(http);

  // What the pod's socket directory looked like: the pod user's, 0700, holding the model's socket.
  const look = await run('look', serveImageId, { ...initSpec, securityContext: {} }, 'none',
    ['-e', "const fs=require('fs');const d=fs.statSync('/sockets');const s=fs.statSync('/sockets/iris.sock');console.log(JSON.stringify({uid:d.uid,mode:d.mode&0o777,socket:s.isSocket(),socketUid:s.uid}))"], ['node']);
  await look.wait();
  const seen = JSON.parse((await look.logs({ stdout: true })).toString().replace(/^[^{]*/, '')) as { uid: number; mode: number; socket: boolean; socketUid: number };
  assert.deepEqual(seen, { uid: user, mode: 0o700, socket: true, socketUid: user });

  // Pod shutdown: SIGTERM to each container, and both exit 0.
  await frontContainer.stop({ t: 20 });
  await model.stop({ t: 20 });
  assert.equal((await frontContainer.inspect()).State.ExitCode, 0, await logs());
  assert.equal((await model.inspect()).State.ExitCode, 0, await logs());
});

test.run();
