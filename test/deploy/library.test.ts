import assert from 'node:assert/strict';
import { kubernetesObjects, parseImageName, requireDigestReference, type DeployOptions, type ModelImage } from '@pyml/deploy';
import { parseReference } from '@pyml/registry/reference';
import { test } from 'uvu';
import { pyml } from '../helpers/cli.ts';
import { SERVE_IMAGE } from './fixtures.ts';

const digest = (c: string) => `sha256:${c.repeat(64)}`;
const model = (name: string, c: string): ModelImage => ({ name, image: `registry.example.com/m/${c}@${digest(c)}`, digest: digest(c), from: 'test' });
const options = (patch: Partial<DeployOptions> = {}): DeployOptions => ({
  name: 'ml', serveImage: SERVE_IMAGE, layout: 'pod', replicas: 2, maxReplicas: 10, cpuUtilization: 70, ...patch,
});
// eslint-disable-next-line @typescript-eslint/no-explicit-any
const json = (o: { toJSON(): unknown }) => o.toJSON() as any;

test('model names that are not DNS labels: container and object names are made valid, routing keeps the real name', () => {
  const objects = kubernetesObjects([model('Iris_v2', 'a'), model('wine.red', 'b')], options({ layout: 'per-model' }));
  const deployments = objects.filter((o) => o.kind === 'Deployment').map(json);
  assert.deepEqual(deployments.map((d) => d.metadata.name), ['ml-iris-v2', 'ml-wine-red']);
  const [front, iris] = deployments[0].spec.template.spec.containers;
  assert.equal(iris.name, 'model-iris-v2');
  assert.ok(front.command.includes('Iris_v2=unix:///sockets/Iris_v2.sock'), front.command.join(' '));
  assert.deepEqual(iris.args, ['serve', '--socket', '/sockets/Iris_v2.sock']);
  assert.equal(iris.readinessProbe.httpGet.path, '/v2/models/Iris_v2/ready');
});

test('clear errors: two models that collide, a bad --name, bounds, no models', () => {
  assert.throws(() => kubernetesObjects([model('iris', 'a'), model('IRIS', 'b')], options()), /models 'iris' .* and 'IRIS' .* would share the container name model-iris/);
  assert.throws(() => kubernetesObjects([model('iris', 'a')], options({ name: 'My_Models' })), /--name 'My_Models' is not a valid Kubernetes name/);
  assert.throws(() => kubernetesObjects([model('iris', 'a')], options({ namespace: 'ML' })), /--namespace 'ML'/);
  assert.throws(() => kubernetesObjects([model('iris', 'a')], options({ replicas: 5, maxReplicas: 3 })), /--max-replicas \(3\) is below --replicas \(5\)/);
  assert.throws(() => kubernetesObjects([], options()), /no models/);
});

test('the CLI: help, a missing target or flag is a usage error (exit 2)', async () => {
  const help = await pyml(['deploy', '--help']);
  assert.equal(help.code, 0);
  assert.match(help.stdout, /pyml deploy k8s REF\.\.\. --out DIR --serve-image/);
  const noTarget = await pyml(['deploy']);
  assert.equal(noTarget.code, 2);
  const other = await pyml(['deploy', 'nomad', 'x']);
  assert.equal(other.code, 2);
  assert.match(other.stderr, /knows k8s and serve-image; got 'nomad'/);
  const noOut = await pyml(['deploy', 'k8s', `iris=registry.example.com/m/iris@${digest('a')}`, '--serve-image', SERVE_IMAGE]);
  assert.equal(noOut.code, 2);
  assert.match(noOut.stderr, /needs --out DIR/);
  const badLayout = await pyml(['deploy', 'k8s', `iris=registry.example.com/m/iris@${digest('a')}`, '--serve-image', SERVE_IMAGE, '--out', '/tmp/x', '--layout', 'mesh']);
  assert.equal(badLayout.code, 2);
  assert.match(badLayout.stderr, /--layout must be pod or per-model, got 'mesh'/);
});

test('image references: deploy reads them with the grammar push and pull use, and writes them with their registry', () => {
  const pinned = `127.0.0.1:5000/models/iris:1.0@${digest('c')}`;
  assert.deepEqual(parseImageName(pinned, 'x'), { repository: '127.0.0.1:5000/models/iris', tag: '1.0', digest: digest('c') });
  assert.equal(parseReference(pinned).repository, 'models/iris');
  // A Docker Hub short name is spelled out, as the engine and the kubelet resolve it.
  assert.equal(requireDigestReference(`iris@${digest('d')}`, '--serve-image'), `docker.io/library/iris@${digest('d')}`);
  assert.equal(requireDigestReference(`[::1]:5000/m@${digest('e')}`, '--serve-image'), `[::1]:5000/m@${digest('e')}`);
  for (const bad of ['Iris/UPPER@' + digest('a'), 'host:5000/m@sha256:123', 'host/m:bad tag']) {
    assert.throws(() => parseImageName(bad, '--model'), /--model: '.*' is not an image reference \(expected REGISTRY\/REPOSITORY/);
  }
  assert.throws(() => requireDigestReference('host/m:1.0', '--serve-image'), /names no digest/);
});

test.run();
