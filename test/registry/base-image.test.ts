import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { test } from 'uvu';
import { BlobStore, appendLayers, emptyImage, storedLayer, withConfig, writeLayout, type Layer } from '@pyml/image';
import { parseJson, pyml, testEnv } from '../helpers/cli.ts';
import { copyExample, editFile, tempDir } from '../helpers/project.ts';
import { startRegistry, type RegistryServer } from '../helpers/registry-server.ts';
import { requireTool } from '../helpers/tools.ts';
import { buildIris, type BuiltImage } from './fixtures.ts';

type Part = BuiltImage['parts'][number];

let registry: RegistryServer;
let iris: BuiltImage;
let baseLayer: Layer;

/** A Node base image of our own making (the default base layer, with a config of its own), pushed as REPO:TAG. */
async function pushBase(repo: string, architecture: string): Promise<void> {
  const store = new BlobStore(testEnv().PYML_CACHE_DIR);
  let image = appendLayers(emptyImage({ os: 'linux', architecture }, '2024-01-01T00:00:00Z'), baseLayer);
  image = withConfig(image, {
    Env: ['PATH=/usr/local/bin:/usr/bin:/bin', 'NODE_VERSION=20.0.0', 'BASE_MARKER=from-the-registry'],
    Labels: { 'org.example.base': 'node' },
  });
  const layout = path.join(await tempDir('pyml-base-'), 'base');
  await writeLayout(image, layout, { store, refName: 'latest' });
  const r = await pyml(['push', layout, `${registry.host}/${repo}:latest`]);
  assert.equal(r.code, 0, r.stderr);
}

async function projectOnBase(base: string): Promise<string> {
  const project = await copyExample('onnx-iris');
  await editFile(path.join(project, 'pyml.config.ts'), (t) => t.replace("plugins: [onnx()],", `plugins: [onnx()],\n  image: { base: ${JSON.stringify(base)} },`));
  return project;
}

test.before(async () => {
  requireTool('skopeo');
  registry = await startRegistry();
  iris = await buildIris();
  const b = iris.parts.find((p) => p.part === 'base')!;
  baseLayer = storedLayer({ mediaType: b.mediaType, digest: b.digest, diffId: b.diffId, size: b.size, annotations: {} }, new BlobStore(testEnv().PYML_CACHE_DIR));
  await pushBase('base/node', 'amd64');
});
test.after(async () => { await registry?.stop(); });

test('image.base names a registry image: its layers are reused byte for byte and its config extended', async () => {
  const project = await projectOnBase(`${registry.host}/base/node:latest`);
  const out = path.join(await tempDir(), 'image');
  // A cache of its own: the base's blobs must come from the registry.
  const cache = await tempDir('pyml-base-cache-');
  const r = await pyml(['build', project, '--out', out, '--json'], { env: { PYML_CACHE_DIR: cache } });
  assert.equal(r.code, 0, r.stderr);
  const built = parseJson<{ digest: string; parts: Part[] }>(r);
  assert.equal(built.parts[0].part, 'base');
  assert.equal(built.parts[0].digest, baseLayer.digest, 'the base layer is the registry blob, not recompressed');
  const stored = await readFile(path.join(cache, 'blobs/sha256', baseLayer.digest.slice(7)));
  assert.equal(stored.length, baseLayer.size);
  const d = parseJson<{ entrypoint: { env: string[] }; labels: Record<string, string>; annotations: Record<string, string> }>(
    await pyml(['inspect', 'image', out, '--json']));
  assert.ok(d.entrypoint.env.includes('BASE_MARKER=from-the-registry'), `env kept: ${d.entrypoint.env}`);
  assert.equal(d.labels['org.example.base'], 'node');
  assert.equal(d.annotations['org.opencontainers.image.base.name'], `${registry.host}/base/node:latest`);
  assert.match(d.annotations['org.opencontainers.image.base.digest'], /^sha256:[0-9a-f]{64}$/);
  // Pushed to the same registry, the base layer is mounted from the base's repository, not uploaded.
  const pushed = await pyml(['push', out, `${registry.host}/on-base/iris:1.0.0`, '--json'], { env: { PYML_CACHE_DIR: cache } });
  assert.equal(pushed.code, 0, pushed.stderr);
  const blobs = parseJson<{ blobs: { digest: string; action: string; from?: string }[] }>(pushed).blobs;
  const base = blobs.find((b) => b.digest === baseLayer.digest)!;
  assert.equal(base.action, 'mounted');
  assert.equal(base.from, 'base/node');
});

test('a registry base for another platform, or an unreachable one, fails the build clearly', async () => {
  await pushBase('base/node-arm', 'arm64');
  const wrong = await pyml(['build', await projectOnBase(`${registry.host}/base/node-arm:latest`), '--out', path.join(await tempDir(), 'image')]);
  assert.equal(wrong.code, 2, wrong.stderr);
  assert.match(wrong.stderr, /image\.base 127\.0\.0\.1:\d+\/base\/node-arm:latest is for linux\/arm64, but the image is built for linux\/amd64/);
  const away = await pyml(['build', await projectOnBase('127.0.0.1:9/base/node:latest'), '--out', path.join(await tempDir(), 'image')], { env: { PYML_REGISTRY_ATTEMPTS: '1' } });
  assert.equal(away.code, 1, away.stderr);
  assert.match(away.stderr, /pyml\.config\.ts: image\.base 127\.0\.0\.1:9\/base\/node:latest: .*connection refused/);
  const missing = await pyml(['build', await projectOnBase(`${registry.host}/base/none:latest`), '--out', path.join(await tempDir(), 'image')]);
  assert.equal(missing.code, 1, missing.stderr);
  assert.match(missing.stderr, /base\/none:latest does not exist/);
});

test.run();
