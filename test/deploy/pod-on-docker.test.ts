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
 * Issue 11 item 4: the pod `pyml deploy k8s` writes, run on a real Docker engine. The model container is started
 * from the Deployment's own container spec (image by its content id, args, user, read-only root, no network, the
 * socket volume as a bind mount owned by the pod user with mode 0700, as the init container leaves it); the front
 * runs the front container's command as a host process (in the pod it is a container of the serve image).
 */

const SERVE_IMAGE = `127.0.0.1:5000/pyml-serve@sha256:${'b'.repeat(64)}`;
let engine: DockerEngine;
let docker: Docker;
let imageId: string;
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

  const manifests = path.join(out, 'k8s');
  const r = await pyml(['deploy', 'k8s', `${path.join(out, 'layout')}=127.0.0.1:5000/models/iris`, '--serve-image', SERVE_IMAGE, '--out', manifests, '--json']);
  assert.equal(r.code, 0, r.stderr);
  const deployed = parseJson<{ models: { name: string; image: string }[] }>(r);
  assert.equal(deployed.models[0].image, `127.0.0.1:5000/models/iris@${parseJson<{ digest: string }>(built).digest}`);
  const deployment = yaml.load(await readFile(path.join(manifests, 'deployment-iris.yaml'), 'utf8')) as { spec: { template: { spec: IPodSpec } } };
  pod = deployment.spec.template.spec;
});

test.after(async () => {
  await front?.stop();
  for (const id of containerIds) await docker.getContainer(id).remove({ force: true }).catch(() => {});
  await engine?.stop();
});

/** `docker run` options for a container of the pod, from its spec: the same args, user and isolation. */
function hostConfigFor(c: IContainer, socketsOnHost: string): Docker.HostConfig {
  const binds: string[] = [];
  const tmpfs: Record<string, string> = {};
  for (const m of c.volumeMounts ?? []) {
    const volume = pod.volumes!.find((v) => v.name === m.name)!;
    assert.ok(volume.emptyDir, `volume ${m.name} is an emptyDir`);
    if (m.name === 'sockets') binds.push(`${socketsOnHost}:${m.mountPath}`);
    else tmpfs[m.mountPath] = 'rw,size=64m';
  }
  return {
    NetworkMode: 'none',
    Binds: binds,
    Tmpfs: tmpfs,
    ReadonlyRootfs: c.securityContext?.readOnlyRootFilesystem === true,
    CapDrop: c.securityContext?.capabilities?.drop,
    SecurityOpt: c.securityContext?.allowPrivilegeEscalation === false ? ['no-new-privileges'] : [],
  };
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

test.run();
