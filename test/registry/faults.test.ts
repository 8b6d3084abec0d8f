import assert from 'node:assert/strict';
import { readdir, stat } from 'node:fs/promises';
import path from 'node:path';
import { test } from 'uvu';
import { parseJson, pyml } from '../helpers/cli.ts';
import { startRegistry, type RegistryServer } from '../helpers/registry-server.ts';
import { tempDir } from '../helpers/project.ts';
import { requireTool } from '../helpers/tools.ts';
import { startCuttingProxy } from './cutting-proxy.ts';
import { buildIris, manifestStatus, skopeoInspect, type BuiltImage } from './fixtures.ts';

let registry: RegistryServer;
let iris: BuiltImage;

test.before(async () => {
  requireTool('skopeo');
  registry = await startRegistry();
  iris = await buildIris();
});
test.after(async () => { await registry?.stop(); });

test('a registry that drops the connection half-way through every upload: clear error, no manifest', async () => {
  // 1 MB into a connection: past the small blobs' requests, inside the 17 MB and 37 MB layer uploads.
  const proxy = await startCuttingProxy(registry.port, { afterUploadBytes: 1024 * 1024 });
  try {
    const r = await pyml(['push', iris.layout, `${proxy.host}/cut/iris:1.0.0`], { env: { PYML_REGISTRY_ATTEMPTS: '2' } });
    assert.equal(r.code, 1, r.stdout);
    assert.match(r.stderr, /push to 127\.0\.0\.1:\d+\/cut\/iris:1\.0\.0 failed, no manifest was written/);
    assert.match(r.stderr, /uploading layer \d \((base|deps)[^)]*\) sha256:[0-9a-f]{64} on 127\.0\.0\.1:\d+ failed after 2 attempts/);
    assert.match(r.stderr, /connection closed by the server after \d+ bytes/);
    assert.ok(proxy.cuts() >= 2, `the proxy cut ${proxy.cuts()} connections`);
  } finally {
    await proxy.close();
  }
  // Asked directly, not through the proxy: no manifest under the tag.
  assert.equal(await manifestStatus(registry.url, 'cut/iris', '1.0.0'), 404);
});

test('one dropped connection is retried and the push completes intact', async () => {
  const proxy = await startCuttingProxy(registry.port, { afterUploadBytes: 1024 * 1024, maxCuts: 1 });
  try {
    const r = await pyml(['push', iris.layout, `${proxy.host}/retried/iris:1.0.0`, '--json']);
    assert.equal(r.code, 0, r.stderr);
    assert.equal(proxy.cuts(), 1);
    assert.equal(parseJson<{ digest: string }>(r).digest, iris.digest);
  } finally {
    await proxy.close();
  }
  const seen = await skopeoInspect(`${registry.host}/retried/iris:1.0.0`);
  assert.equal(seen.Digest, iris.digest);
  const verify = await pyml(['inspect', 'image', `${registry.host}/retried/iris:1.0.0`, '--verify', '--json']);
  assert.equal(verify.code, 0, verify.stderr);
  assert.equal(parseJson<{ verified: boolean }>(verify).verified, true);
});

test('a pull whose downloads are cut half-way fails clearly and leaves no layout behind', async () => {
  const out = path.join(await tempDir(), 'pulled');
  const pushed = await pyml(['push', iris.layout, `${registry.host}/whole/iris:1.0.0`]);
  assert.equal(pushed.code, 0, pushed.stderr);
  // 2 MB into any connection: the manifest and small blobs arrive, the 17 MB and 37 MB layers do not.
  const proxy = await startCuttingProxy(registry.port, { afterDownloadBytes: 2 * 1024 * 1024 });
  try {
    const r = await pyml(['pull', `${proxy.host}/whole/iris:1.0.0`, '--out', out], { env: { PYML_REGISTRY_ATTEMPTS: '2' } });
    assert.equal(r.code, 1, r.stdout);
    assert.match(r.stderr, /pull of 127\.0\.0\.1:\d+\/whole\/iris:1\.0\.0 failed, nothing was written to /);
    assert.match(r.stderr, /fetching layer \d sha256:[0-9a-f]{64} on 127\.0\.0\.1:\d+ failed after 2 attempts/);
    assert.ok(proxy.cuts() >= 2);
  } finally {
    await proxy.close();
  }
  assert.equal(await stat(out).then(() => true, () => false), false);
  const leftovers = (await readdir(path.dirname(out))).filter((n) => n !== 'pulled');
  assert.deepEqual(leftovers, [], 'no temp directory is left beside the target');
});

test.run();
