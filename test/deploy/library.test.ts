import assert from 'node:assert/strict';
import { kubernetesObjects, type DeployOptions, type ModelImage } from '@pyml/deploy';
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

test.run();
