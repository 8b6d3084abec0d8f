import assert from 'node:assert/strict';
import { cp, mkdir, readdir, readFile, writeFile } from 'node:fs/promises';
import { createHash } from 'node:crypto';
import path from 'node:path';
import { Deployment } from 'kubernetes-models/apps/v1/Deployment';
import { test } from 'uvu';
import { parseJson } from '../helpers/cli.ts';
import { tempDir } from '../helpers/project.ts';
import { buildIris, deploy, DIGEST_REF, readWritten, SERVE_IMAGE, type BuiltImage } from './fixtures.ts';

let iris: BuiltImage;
const OTHER = `registry.example.com/models/wine@sha256:${'c'.repeat(64)}`;

test.before(async () => {
  iris = await buildIris();
});

// eslint-disable-next-line @typescript-eslint/no-explicit-any
type Obj = Record<string, any>;
const byKind = (objects: Obj[], kind: string) => objects.filter((o) => o.kind === kind);

test('pod layout: Deployment, Service, HPA and PDB, each valid against the Kubernetes API schema', async () => {
  const r = await deploy([`${iris.layout}=127.0.0.1:5000/models/iris:1.0.0`, `wine=${OTHER}`, '--serve-image', SERVE_IMAGE, '--name', 'models', '--json']);
  assert.equal(r.code, 0, r.stderr);
  const w = await readWritten(r.out);
  assert.deepEqual(Object.keys(w.files), ['deployment-models.yaml', 'hpa-models.yaml', 'pdb-models.yaml', 'service-models.yaml']);
  assert.deepEqual(w.objects.map((o) => `${o.apiVersion} ${o.kind}`).sort(),
    ['apps/v1 Deployment', 'autoscaling/v2 HorizontalPodAutoscaler', 'policy/v1 PodDisruptionBudget', 'v1 Service']);
  const json = parseJson<{ models: { name: string; image: string }[] }>(r);
  assert.deepEqual(json.models.map((m) => m.name), ['iris', 'wine']);
});

test('images are referenced by digest only: the layout\'s manifest digest, never a tag', async () => {
  const r = await deploy([`${iris.layout}=127.0.0.1:5000/models/iris:1.0.0`, '--serve-image', `${SERVE_IMAGE.replace('@', ':9.9@')}`]);
  assert.equal(r.code, 0, r.stderr);
  const w = await readWritten(r.out);
  const pod = byKind(w.objects, 'Deployment')[0].spec.template.spec;
  const images = [...pod.initContainers, ...pod.containers].map((c: Obj) => c.image as string);
  assert.equal(images.length, 3);
  for (const image of images) assert.match(image, DIGEST_REF, `${image} is pinned by digest`);
  assert.ok(images.every((i) => !/:[\w.-]+@/.test(i)), `no tag beside the digest: ${images}`);
  assert.ok(images.includes(`127.0.0.1:5000/models/iris@${iris.digest}`), `the model image is the built layout's digest: ${images}`);
  assert.ok(!(await readFile(path.join(r.out, 'deployment-iris.yaml'), 'utf8')).includes('1.0.0'), 'the tag appears nowhere');
});

test('a tag without a digest, a serve image by tag, a digest that is not the layout\'s: refused (exit 2, nothing written)', async () => {
  const tagOnly = await deploy([`iris=127.0.0.1:5000/models/iris:1.0.0`, '--serve-image', SERVE_IMAGE]);
  assert.equal(tagOnly.code, 2);
  assert.match(tagOnly.stderr, /has no digest.*by digest, never by tag/);
  const bare = await deploy(['127.0.0.1:5000/models/iris:1.0.0', '--serve-image', SERVE_IMAGE]);
  assert.equal(bare.code, 2);
  assert.match(bare.stderr, /no digest/);
  const serveByTag = await deploy([`${iris.layout}=127.0.0.1:5000/iris`, '--serve-image', '127.0.0.1:5000/pyml-serve:latest']);
  assert.equal(serveByTag.code, 2);
  assert.match(serveByTag.stderr, /--serve-image: .*names no digest/);
  const wrong = await deploy([`${iris.layout}=127.0.0.1:5000/iris@sha256:${'d'.repeat(64)}`, '--serve-image', SERVE_IMAGE]);
  assert.equal(wrong.code, 2);
  assert.match(wrong.stderr, new RegExp(`the layout's manifest is ${iris.digest}, but the reference pins sha256:d{64}`));
  const missing = await deploy(['/nonexistent/layout=127.0.0.1:5000/iris', '--serve-image', SERVE_IMAGE]);
  assert.equal(missing.code, 2);
  assert.match(missing.stderr, /'\/nonexistent\/layout' is neither an image layout on disk nor a model name/);
  for (const r of [tagOnly, bare, serveByTag, wrong, missing]) {
    assert.equal(await readdir(r.out).catch(() => 'absent'), 'absent', 'no output on failure');
  }
});

test('a multi-platform layout (index.json naming an image index) deploys the index digest', async () => {
  // The layout `pyml build --platform a,b` writes: index.json → image index → one manifest per platform.
  const layout = path.join(await tempDir(), 'multi');
  await cp(iris.layout, layout, { recursive: true });
  const top = JSON.parse(await readFile(path.join(layout, 'index.json'), 'utf8'));
  const [image] = top.manifests;
  const nested = Buffer.from(JSON.stringify({
    schemaVersion: 2, mediaType: 'application/vnd.oci.image.index.v1+json',
    manifests: [{ ...image, annotations: undefined, platform: { os: 'linux', architecture: 'amd64' } }, { ...image, annotations: undefined, platform: { os: 'linux', architecture: 'arm64' } }],
  }));
  const indexDigest = `sha256:${createHash('sha256').update(nested).digest('hex')}`;
  await writeFile(path.join(layout, 'blobs', 'sha256', indexDigest.slice(7)), nested);
  await writeFile(path.join(layout, 'index.json'), JSON.stringify({ schemaVersion: 2, manifests: [{ mediaType: 'application/vnd.oci.image.index.v1+json', digest: indexDigest, size: nested.length }] }));
  const r = await deploy([`${layout}=127.0.0.1:5000/models/iris`, '--serve-image', SERVE_IMAGE, '--json']);
  assert.equal(r.code, 0, r.stderr);
  const [m] = parseJson<{ models: { name: string; image: string; from: string }[] }>(r).models;
  assert.equal(m.name, 'iris');
  assert.equal(m.image, `127.0.0.1:5000/models/iris@${indexDigest}`);
  assert.match(m.from, /image index; model read from its linux\/amd64 image/);
  const pinned = await deploy([`${layout}=127.0.0.1:5000/models/iris@${iris.digest}`, '--serve-image', SERVE_IMAGE]);
  assert.equal(pinned.code, 2, 'the platform manifest\'s digest is not what the layout was pushed as');
  assert.match(pinned.stderr, new RegExp(`the layout's manifest is ${indexDigest}`));
});

test('the socket emptyDir is shared by every container; model containers have no ports and run the image entrypoint', async () => {
  const r = await deploy([`${iris.layout}=127.0.0.1:5000/models/iris`, `wine=${OTHER}`, '--serve-image', SERVE_IMAGE, '--name', 'models']);
  assert.equal(r.code, 0, r.stderr);
  const pod = byKind((await readWritten(r.out)).objects, 'Deployment')[0].spec.template.spec;
  const sockets = pod.volumes.find((v: Obj) => v.name === 'sockets');
  assert.ok(sockets.emptyDir, 'sockets is an emptyDir');
  for (const c of [...pod.initContainers, ...pod.containers]) {
    assert.ok(c.volumeMounts.some((m: Obj) => m.name === 'sockets' && m.mountPath === '/sockets'), `${c.name} mounts the sockets volume`);
  }
  // The init container leaves the directory to the pod user, mode 0700 (emptyDir is created world-writable).
  assert.match(pod.initContainers[0].command.join(' '), /chmodSync\('\/sockets',0o700\)/);
  assert.equal(pod.securityContext.runAsNonRoot, true);
  const [front, ...models] = pod.containers;
  assert.equal(front.name, 'serve');
  assert.deepEqual(front.ports.map((p: Obj) => [p.name, p.containerPort]), [['grpc', 8001], ['http', 8000]]);
  assert.deepEqual(front.command, ['pyml', 'serve', '--model', 'iris=unix:///sockets/iris.sock', '--model', 'wine=unix:///sockets/wine.sock',
    '--grpc', '0.0.0.0:8001', '--http', '0.0.0.0:8000', '--json']);
  assert.deepEqual(models.map((c: Obj) => c.name), ['model-iris', 'model-wine']);
  for (const [c, name] of [[models[0], 'iris'], [models[1], 'wine']] as const) {
    assert.equal(c.ports, undefined, `${c.name} has no ports`);
    assert.equal(c.command, undefined, `${c.name} keeps the image's entrypoint`);
    assert.deepEqual(c.args, ['serve', '--socket', `/sockets/${name}.sock`]);
  }
});

test('probes: gRPC health on the front for readiness, HTTP liveness, the V2 model-ready endpoint per model', async () => {
  const r = await deploy([`${iris.layout}=127.0.0.1:5000/models/iris`, '--serve-image', SERVE_IMAGE]);
  assert.equal(r.code, 0, r.stderr);
  const pod = byKind((await readWritten(r.out)).objects, 'Deployment')[0].spec.template.spec;
  const [front, model] = pod.containers;
  assert.deepEqual(front.readinessProbe.grpc, { port: 8001, service: '' });
  assert.deepEqual(front.livenessProbe.httpGet, { path: '/v2/health/live', port: 8000 });
  assert.deepEqual(model.readinessProbe.httpGet, { path: '/v2/models/iris/ready', port: 8000 });
});

test('Service, HorizontalPodAutoscaler and PodDisruptionBudget select the Deployment\'s pods', async () => {
  const r = await deploy([`${iris.layout}=127.0.0.1:5000/models/iris`, '--serve-image', SERVE_IMAGE, '--replicas', '3', '--max-replicas', '12', '--cpu-utilization', '60']);
  assert.equal(r.code, 0, r.stderr);
  const { objects } = await readWritten(r.out);
  const [d] = byKind(objects, 'Deployment');
  const [svc] = byKind(objects, 'Service');
  const [hpa] = byKind(objects, 'HorizontalPodAutoscaler');
  const [pdb] = byKind(objects, 'PodDisruptionBudget');
  const podLabels = d.spec.template.metadata.labels;
  const selects = (sel: Record<string, string>) => Object.entries(sel).every(([k, v]) => podLabels[k] === v);
  assert.ok(selects(d.spec.selector.matchLabels) && selects(svc.spec.selector) && selects(pdb.spec.selector.matchLabels));
  assert.deepEqual(svc.spec.ports.map((p: Obj) => [p.name, p.port, p.targetPort]), [['grpc', 8001, 'grpc'], ['http', 8000, 'http']]);
  assert.deepEqual(hpa.spec.scaleTargetRef, { apiVersion: 'apps/v1', kind: 'Deployment', name: d.metadata.name });
  assert.equal(hpa.spec.minReplicas, 3);
  assert.equal(hpa.spec.maxReplicas, 12);
  assert.deepEqual(hpa.spec.metrics, [{ type: 'Resource', resource: { name: 'cpu', target: { type: 'Utilization', averageUtilization: 60 } } }]);
  assert.equal(d.spec.replicas, undefined, 'the autoscaler owns the replica count');
  assert.equal(pdb.spec.maxUnavailable, 1);
  // The autoscaler's utilisation is relative to the requests: every container must have a CPU request.
  for (const c of d.spec.template.spec.containers) assert.ok(c.resources.requests.cpu, `${c.name} requests CPU`);
});

test('resources: defaults sized from the weights, the --resources file overriding per model and for the front', async () => {
  const plain = await deploy([`${iris.layout}=127.0.0.1:5000/models/iris`, '--serve-image', SERVE_IMAGE]);
  const pod = byKind((await readWritten(plain.out)).objects, 'Deployment')[0].spec.template.spec;
  assert.deepEqual(pod.containers[0].resources, { requests: { cpu: '100m', memory: '128Mi' }, limits: { memory: '512Mi' } });
  assert.deepEqual(pod.containers[1].resources, { requests: { cpu: '500m', memory: '320Mi' }, limits: { memory: '640Mi' } });

  const dir = await tempDir();
  const file = path.join(dir, 'resources.yaml');
  await writeFile(file, 'front:\n  requests: { cpu: 200m }\ndefault:\n  requests: { cpu: "1" }\nmodels:\n  iris:\n    requests: { memory: 1Gi }\n    limits: { memory: 2Gi, nvidia.com/gpu: 1 }\n');
  const r = await deploy([`${iris.layout}=127.0.0.1:5000/models/iris`, `wine=${OTHER}`, '--serve-image', SERVE_IMAGE, '--resources', file, '--name', 'm']);
  assert.equal(r.code, 0, r.stderr);
  const [front, irisC, wineC] = byKind((await readWritten(r.out)).objects, 'Deployment')[0].spec.template.spec.containers;
  assert.deepEqual(front.resources, { requests: { cpu: '200m', memory: '128Mi' }, limits: { memory: '512Mi' } });
  assert.deepEqual(irisC.resources, { requests: { cpu: '1', memory: '1Gi' }, limits: { memory: '2Gi', 'nvidia.com/gpu': '1' } });
  assert.deepEqual(wineC.resources, { requests: { cpu: '1', memory: '256Mi' }, limits: { memory: '512Mi' } });

  await writeFile(file, 'models:\n  iris:\n    limits: { memory: lots }\n');
  const bad = await deploy([`${iris.layout}=127.0.0.1:5000/models/iris`, '--serve-image', SERVE_IMAGE, '--resources', file]);
  assert.equal(bad.code, 2);
  assert.match(bad.stderr, /resources\.yaml: models\.iris\.limits\.memory: "lots" is not a Kubernetes quantity/);
  await writeFile(file, 'models:\n  irsi: { requests: { cpu: 1 } }\n');
  const typo = await deploy([`${iris.layout}=127.0.0.1:5000/models/iris`, '--serve-image', SERVE_IMAGE, '--resources', file]);
  assert.equal(typo.code, 1);
  assert.match(typo.stderr, /--resources names model irsi, which is not deployed \(models: iris\)/);
});

test('--format kustomize adds a kustomization listing every file; --namespace reaches every object', async () => {
  const r = await deploy([`${iris.layout}=127.0.0.1:5000/models/iris`, '--serve-image', SERVE_IMAGE, '--format', 'kustomize', '--namespace', 'ml']);
  assert.equal(r.code, 0, r.stderr);
  const w = await readWritten(r.out);
  const [k] = w.files['kustomization.yaml'];
  assert.equal(k.apiVersion, 'kustomize.config.k8s.io/v1beta1');
  assert.equal(k.namespace, 'ml');
  assert.deepEqual([...k.resources].sort(), Object.keys(w.files).filter((f) => f !== 'kustomization.yaml').sort());
  assert.ok(w.objects.every((o) => o.metadata.namespace === 'ml'));
});

test('--layout per-model: one Deployment, Service, HPA and PDB per model, each pod the front and that model', async () => {
  const r = await deploy([`${iris.layout}=127.0.0.1:5000/models/iris`, `wine=${OTHER}`, '--serve-image', SERVE_IMAGE, '--layout', 'per-model', '--name', 'ml']);
  assert.equal(r.code, 0, r.stderr);
  const { objects } = await readWritten(r.out);
  assert.equal(objects.length, 8);
  const deployments = byKind(objects, 'Deployment');
  assert.deepEqual(deployments.map((d) => d.metadata.name), ['ml-iris', 'ml-wine']);
  for (const [d, model] of [[deployments[0], 'iris'], [deployments[1], 'wine']] as const) {
    const names = d.spec.template.spec.containers.map((c: Obj) => c.name);
    assert.deepEqual(names, ['serve', `model-${model}`]);
    assert.deepEqual(d.spec.template.spec.containers[0].command.filter((a: string) => a.includes('unix://')), [`${model}=unix:///sockets/${model}.sock`]);
  }
  assert.deepEqual(byKind(objects, 'HorizontalPodAutoscaler').map((h) => h.spec.scaleTargetRef.name), ['ml-iris', 'ml-wine']);
  assert.deepEqual(byKind(objects, 'Service').map((s) => s.spec.selector['app.kubernetes.io/name']), ['ml-iris', 'ml-wine']);
});

test('the schema check can fail: the same Deployment with a wrong field type is rejected by the library', async () => {
  const r = await deploy([`${iris.layout}=127.0.0.1:5000/models/iris`, '--serve-image', SERVE_IMAGE]);
  const [d] = byKind((await readWritten(r.out)).objects, 'Deployment');
  d.spec.template.spec.containers[0].ports[0].containerPort = 'eight thousand and one';
  assert.throws(() => new Deployment(d as never).validate(), /containerPort must be integer/);
  delete d.spec.selector;
  d.spec.template.spec.containers[0].ports[0].containerPort = 8001;
  assert.throws(() => new Deployment(d as never).validate(), /selector/);
});

test('--out: a previous output is replaced whole; a directory with other files is refused and left alone', async () => {
  const r = await deploy([`${iris.layout}=127.0.0.1:5000/models/iris`, `wine=${OTHER}`, '--serve-image', SERVE_IMAGE, '--layout', 'per-model', '--name', 'ml']);
  assert.equal(r.code, 0, r.stderr);
  const again = await deploy([`${iris.layout}=127.0.0.1:5000/models/iris`, '--serve-image', SERVE_IMAGE, '--name', 'ml']);
  // Same --out: rerun into the first directory.
  const { pyml } = await import('../helpers/cli.ts');
  const rerun = await pyml(['deploy', 'k8s', `${iris.layout}=127.0.0.1:5000/models/iris`, '--serve-image', SERVE_IMAGE, '--name', 'ml', '--out', r.out]);
  assert.equal(rerun.code, 0, rerun.stderr);
  assert.deepEqual((await readdir(r.out)).sort(), (await readdir(again.out)).sort(), 'nothing of the per-model output is left');
  const parent = path.dirname(r.out);
  assert.deepEqual((await readdir(parent)).filter((f) => f.startsWith('.')), [], 'no temp or old directories left beside it');

  const foreign = path.join(await tempDir(), 'mine');
  await mkdir(foreign);
  await writeFile(path.join(foreign, 'notes.txt'), 'keep me');
  const refused = await pyml(['deploy', 'k8s', `${iris.layout}=127.0.0.1:5000/models/iris`, '--serve-image', SERVE_IMAGE, '--out', foreign]);
  assert.equal(refused.code, 1);
  assert.match(refused.stderr, /holds files that are not manifests \(notes\.txt\)/);
  assert.deepEqual(await readdir(foreign), ['notes.txt']);
});

test.run();
