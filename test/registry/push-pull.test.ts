import assert from 'node:assert/strict';
import { readFile, stat, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { test } from 'uvu';
import { parseJson, pyml, runProcess } from '../helpers/cli.ts';
import { startRegistry, type RegistryServer } from '../helpers/registry-server.ts';
import { copyExample, tempDir } from '../helpers/project.ts';
import { requireTool } from '../helpers/tools.ts';
import { buildIris, changeCode, manifestStatus, skopeoInspect, type BuiltImage } from './fixtures.ts';

interface PushJson { ok: boolean; ref: string; digest: string; uploadedBytes: number; blobs: { what: string; digest: string; size: number; action: string; from?: string }[] }

let registry: RegistryServer;
let iris: BuiltImage;

test.before(async () => {
  requireTool('skopeo');
  registry = await startRegistry();
  iris = await buildIris();
});
test.after(async () => { await registry?.stop(); });

test('push to a plain registry: skopeo sees the same manifest digest and layers', async () => {
  const ref = `${registry.host}/iris:1.0.0`;
  const r = await pyml(['push', iris.layout, ref, '--json']);
  assert.equal(r.code, 0, r.stderr);
  const pushed = parseJson<PushJson>(r);
  assert.equal(pushed.digest, iris.digest);
  assert.equal(pushed.blobs.length, iris.parts.length + 1, 'config and every layer');
  assert.ok(pushed.blobs.every((b) => b.action === 'uploaded'), 'a fresh registry has none of the blobs');
  const seen = await skopeoInspect(ref);
  assert.equal(seen.Digest, iris.digest);
  assert.deepEqual(seen.Layers, iris.parts.map((p) => p.digest));
  // The manifest was the last write.
  const writes = registry.requests().filter((q) => q.method === 'PUT');
  assert.match(writes.at(-1)!.path, /\/manifests\/1\.0\.0$/);
  assert.equal(writes.filter((q) => q.path.includes('/manifests/')).length, 1);
});

test('re-push after a code-only change uploads only the changed blobs (counted in the registry log)', async () => {
  const project = await copyExample('onnx-iris');
  await changeCode(project, 'two');
  const changed = await buildIris({ project });
  const old = new Set([...iris.parts.map((p) => p.digest)]);
  const newBlobs = changed.parts.filter((p) => !old.has(p.digest));
  assert.ok(newBlobs.length >= 1 && newBlobs.length < changed.parts.length, `a code change should change some layers, not all (${newBlobs.map((p) => p.part)})`);
  assert.ok(newBlobs.every((p) => p.part === 'model' || p.part === 'entrypoint'), `only code layers change: ${newBlobs.map((p) => p.part)}`);
  registry.resetRequests();
  const r = await pyml(['push', changed.layout, `${registry.host}/iris:1.0.0`, '--json']);
  assert.equal(r.code, 0, r.stderr);
  const pushed = parseJson<PushJson>(r);
  const log = registry.requests();
  const blobPuts = log.filter((q) => q.method === 'PUT' && q.path.includes('/blobs/uploads/'));
  // The changed layers and the new config: nothing else crosses the wire.
  assert.equal(blobPuts.length, newBlobs.length + 1, `blob uploads: ${blobPuts.map((q) => q.path.replace(/.*digest=/, ''))}`);
  for (const p of newBlobs) assert.ok(blobPuts.some((q) => decodeURIComponent(q.path).endsWith(`digest=${p.digest}`)), `uploaded ${p.part}`);
  assert.equal(log.filter((q) => q.method === 'HEAD' && q.status === 200).length, changed.parts.length - newBlobs.length);
  assert.equal(pushed.uploadedBytes, newBlobs.reduce((n, p) => n + p.size, 0) + pushed.blobs.find((b) => b.what === 'config')!.size);
  assert.equal((await skopeoInspect(`${registry.host}/iris:1.0.0`)).Digest, changed.digest);
});

test('push to another repository of the same registry mounts every blob instead of uploading it', async () => {
  registry.resetRequests();
  const r = await pyml(['push', iris.layout, `${registry.host}/team/iris-copy:1.0.0`, '--json']);
  assert.equal(r.code, 0, r.stderr);
  const pushed = parseJson<PushJson>(r);
  assert.ok(pushed.blobs.every((b) => b.action === 'mounted' && b.from === 'iris'), JSON.stringify(pushed.blobs));
  assert.equal(pushed.uploadedBytes, 0);
  const log = registry.requests();
  assert.equal(log.filter((q) => q.method === 'POST' && q.path.includes('mount=') && q.status === 201).length, pushed.blobs.length);
  assert.equal(log.filter((q) => q.method === 'PUT' && q.path.includes('/blobs/')).length, 0);
  assert.equal((await skopeoInspect(`${registry.host}/team/iris-copy:1.0.0`)).Digest, iris.digest);
  // Registry to registry: the source repository is named, so the copy is all mounts.
  const copy = await pyml(['push', `${registry.host}/team/iris-copy:1.0.0`, `${registry.host}/iris-third:1.0.0`, '--json']);
  assert.equal(copy.code, 0, copy.stderr);
  assert.ok(parseJson<PushJson>(copy).blobs.every((b) => b.action === 'mounted'));
});

test('pyml pull of an image pushed by skopeo copy gives a verified layout with the same digest', async () => {
  const ref = `${registry.host}/by-skopeo:1.0.0`;
  // --preserve-digests: skopeo would otherwise gzip the image's plain-tar layers (base, deps) on their way to a
  // registry, giving them (and the manifest) other digests than the layout's.
  const copy = await runProcess('skopeo', ['copy', '--preserve-digests', '--dest-tls-verify=false', `oci:${iris.layout}:1.0.0`, `docker://${ref}`]);
  assert.equal(copy.code, 0, copy.stderr);
  const expected = (await skopeoInspect(ref)).Digest;
  const out = path.join(await tempDir(), 'pulled');
  const r = await pyml(['pull', `docker://${ref}`, '--out', out, '--json']);
  assert.equal(r.code, 0, r.stderr);
  assert.equal(parseJson<{ digest: string }>(r).digest, expected);
  const index = JSON.parse(await readFile(path.join(out, 'index.json'), 'utf8'));
  assert.equal(index.manifests[0].digest, expected);
  assert.equal(index.manifests[0].annotations['org.opencontainers.image.ref.name'], '1.0.0');
  const inspect = await pyml(['inspect', 'image', out, '--verify', '--json']);
  assert.equal(inspect.code, 0, inspect.stderr);
  const described = parseJson<{ verified: boolean; name: string; parts: { digest: string }[] }>(inspect);
  assert.equal(described.verified, true);
  assert.equal(described.name, 'iris');
  assert.deepEqual(described.parts.map((p) => p.digest), iris.parts.map((p) => p.digest));
  // umoci, an independent reader, accepts the layout too.
  const umoci = await runProcess('umoci', ['stat', '--image', `${out}:1.0.0`]);
  assert.equal(umoci.code, 0, umoci.stderr);
  // --out that is a file, or a directory of other files, is never replaced.
  const file = path.join(path.dirname(out), 'notes.txt');
  await writeFile(file, 'mine\n');
  const onFile = await pyml(['pull', `docker://${ref}`, '--out', file]);
  assert.notEqual(onFile.code, 0);
  assert.match(onFile.stderr, /notes\.txt exists and is not a directory; refusing to replace it/);
  assert.equal(await readFile(file, 'utf8'), 'mine\n');
  const onDir = await pyml(['pull', `docker://${ref}`, '--out', path.dirname(out)]);
  assert.notEqual(onDir.code, 0);
  assert.match(onDir.stderr, /holds files and is not an OCI image layout/);
  assert.equal(await readFile(file, 'utf8'), 'mine\n');
});

test('pyml inspect image reads straight from the registry', async () => {
  const r = await pyml(['inspect', 'image', `${registry.host}/by-skopeo:1.0.0`, '--json']);
  assert.equal(r.code, 0, r.stderr);
  const d = parseJson<{ name: string; signature: { inputs: { name: string }[] }; ref: string }>(r);
  assert.equal(d.name, 'iris');
  assert.equal(d.ref, `${registry.host}/by-skopeo:1.0.0`);
  assert.equal(d.signature.inputs[0].name, 'input');
});

test('pyml build --push builds and pushes in one go', async () => {
  const ref = `${registry.host}/built/iris:1.0.0`;
  const r = await pyml(['build', iris.project, '--out', path.join(await tempDir(), 'image'), '--push', ref, '--json']);
  assert.equal(r.code, 0, r.stderr);
  const built = parseJson<{ digest: string; pushed: PushJson }>(r);
  assert.equal(built.pushed.digest, built.digest);
  assert.equal((await skopeoInspect(ref)).Digest, built.digest);
});

test('pulling a tag that does not exist, or from nowhere, fails clearly and writes nothing', async () => {
  const out = path.join(await tempDir(), 'nothing');
  const missing = await pyml(['pull', `${registry.host}/iris:9.9.9`, '--out', out]);
  assert.equal(missing.code, 1);
  assert.match(missing.stderr, /iris:9\.9\.9 does not exist/);
  const closed = await pyml(['push', iris.layout, '127.0.0.1:9/iris:1.0.0'], { env: { PYML_REGISTRY_ATTEMPTS: '2' } });
  assert.equal(closed.code, 1);
  assert.match(closed.stderr, /connection refused/);
  assert.match(closed.stderr, /no manifest was written/);
  const bad = await pyml(['push', iris.layout, `${registry.host}/Bad Name`]);
  assert.equal(bad.code, 2);
  assert.match(bad.stderr, /not an image reference/);
  assert.equal(await manifestStatus(registry.url, 'iris', '9.9.9'), 404);
  assert.equal(await stat(out).then(() => true, () => false), false);
});

test.run();
