import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { test } from 'uvu';
import { parseJson, pyml } from '../helpers/cli.ts';
import { startRegistry, type RegistryServer } from '../helpers/registry-server.ts';
import { buildIris, deploy, readWritten, SERVE_IMAGE, type BuiltImage } from './fixtures.ts';

let registry: RegistryServer;
let v1: BuiltImage;

test.before(async () => {
  registry = await startRegistry();
  v1 = await buildIris();
});
test.after(async () => { await registry?.stop(); });

async function push(image: BuiltImage, ref: string): Promise<string> {
  const r = await pyml(['push', image.layout, ref, '--json']);
  assert.equal(r.code, 0, r.stderr);
  return parseJson<{ digest: string }>(r).digest;
}

test('a pushed image by digest is read from the registry; LAYOUT=REPO gives the same manifests without one', async () => {
  const digest = await push(v1, `${registry.host}/models/iris:1.0.0`);
  assert.equal(digest, v1.digest, 'push sends the layout\'s manifest unchanged, so the layout knows the pushed digest');
  const remote = await deploy([`${registry.host}/models/iris@${digest}`, '--serve-image', SERVE_IMAGE, '--json']);
  assert.equal(remote.code, 0, remote.stderr);
  const models = parseJson<{ models: { name: string; image: string; from: string }[] }>(remote).models;
  assert.deepEqual(models, [{ name: 'iris', version: '1.0.0', image: `${registry.host}/models/iris@${digest}`, from: `registry ${registry.host}/models/iris` }]);
  assert.ok(registry.requests().some((q) => q.method === 'GET' && q.path.endsWith(`/manifests/${digest}`)), 'the registry was asked for that digest');

  const local = await deploy([`${v1.layout}=${registry.host}/models/iris:1.0.0`, '--serve-image', SERVE_IMAGE]);
  assert.equal(local.code, 0, local.stderr);
  for (const file of ['deployment-iris.yaml', 'service-iris.yaml', 'hpa-iris.yaml', 'pdb-iris.yaml']) {
    assert.equal(await readFile(path.join(local.out, file), 'utf8'), await readFile(path.join(remote.out, file), 'utf8'), file);
  }
});

test('a digest the registry does not have is a clear error', async () => {
  const r = await deploy([`${registry.host}/models/iris@sha256:${'e'.repeat(64)}`, '--serve-image', SERVE_IMAGE]);
  assert.equal(r.code, 2);
  assert.match(r.stderr, /models\/iris/);
  assert.match(r.stderr, /sha256:e{64}/);
});

test('rolling out a new model version: a new digest changes the model image line and nothing else', async () => {
  const v2 = await buildIris('two');
  assert.notEqual(v2.digest, v1.digest);
  const pushed = await push(v2, `${registry.host}/models/iris:1.0.0`); // same tag, new content
  assert.equal(pushed, v2.digest);
  const before = await deploy([`${v1.layout}=${registry.host}/models/iris`, '--serve-image', SERVE_IMAGE]);
  const after = await deploy([`${registry.host}/models/iris@${pushed}`, '--serve-image', SERVE_IMAGE]);
  assert.equal(before.code, 0, before.stderr);
  assert.equal(after.code, 0, after.stderr);
  await readWritten(after.out);
  const a = (await readFile(path.join(before.out, 'deployment-iris.yaml'), 'utf8')).split('\n');
  const b = (await readFile(path.join(after.out, 'deployment-iris.yaml'), 'utf8')).split('\n');
  assert.equal(a.length, b.length);
  const changed = a.map((line, i) => [line, b[i]]).filter(([x, y]) => x !== y);
  assert.deepEqual(changed, [[`          image: ${registry.host}/models/iris@${v1.digest}`, `          image: ${registry.host}/models/iris@${v2.digest}`]]);
  for (const f of ['service-iris.yaml', 'hpa-iris.yaml', 'pdb-iris.yaml']) {
    assert.equal(await readFile(path.join(before.out, f), 'utf8'), await readFile(path.join(after.out, f), 'utf8'), `${f} is unchanged`);
  }
});

test.run();
