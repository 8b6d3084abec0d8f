import assert from 'node:assert/strict';
import path from 'node:path';
import { test } from 'uvu';
import {
  BlobStore, appendLayers, buildLayer, emptyImage, openImage, withConfig, storedLayer, writeIndexLayout, writeLayout, type Layer,
} from '@pyml/image';
import { parseJson, pyml, runProcess, testEnv } from '../helpers/cli.ts';
import { copyExample, editFile, tempDir } from '../helpers/project.ts';
import { startRegistry, type RegistryServer } from '../helpers/registry-server.ts';
import { requireTool } from '../helpers/tools.ts';
import { buildIris } from './fixtures.ts';

let registry: RegistryServer;
const ORT = '/opt/pyml/node_modules/onnxruntime-node/bin/napi-v6/linux';
const store = () => new BlobStore(testEnv().PYML_CACHE_DIR);

/**
 * A two-platform Node base in the registry. Its arm64 image carries this machine's (amd64) node layer plus a marker
 * layer: enough to check how images are put together, not to run on arm64 (no arm64 node exists offline here).
 */
async function pushMultiPlatformBase(nodeLayer: Layer): Promise<{ amd64: string[]; arm64: string[] }> {
  const marker = await buildLayer([{ path: '/etc/pyml-base-arch', content: 'arm64\n' }], { store: store(), compression: 'gzip', sourceDateEpoch: 0 });
  const dir = await tempDir('pyml-multi-base-');
  const entries = [];
  const layers = { amd64: [nodeLayer], arm64: [nodeLayer, marker] };
  for (const architecture of ['amd64', 'arm64'] as const) {
    let image = appendLayers(emptyImage({ os: 'linux', architecture }, '2024-01-01T00:00:00Z'), ...layers[architecture]);
    image = withConfig(image, { Env: ['PATH=/usr/local/bin:/usr/bin:/bin', `BASE_ARCH=${architecture}`] });
    const written = await writeLayout(image, path.join(dir, architecture), { store: store() });
    entries.push({ manifestDigest: written.manifestDigest, platform: { os: 'linux', architecture } });
  }
  const layout = path.join(dir, 'index');
  await writeIndexLayout(entries, layout, { store: store(), refName: 'latest' });
  const r = await pyml(['push', layout, `${registry.host}/base/multi:latest`]);
  assert.equal(r.code, 0, r.stderr);
  return { amd64: layers.amd64.map((l) => l.digest), arm64: layers.arm64.map((l) => l.digest) };
}

test.before(async () => {
  requireTool('skopeo');
  registry = await startRegistry();
});
test.after(async () => { await registry?.stop(); });

test('--platform linux/amd64,linux/arm64 writes an image index with each platform\'s native binaries and base', async () => {
  const iris = await buildIris();
  const b = iris.parts.find((p) => p.part === 'base')!;
  const baseLayers = await pushMultiPlatformBase(storedLayer({ mediaType: b.mediaType, digest: b.digest, diffId: b.diffId, size: b.size, annotations: {} }, store()));
  const project = await copyExample('onnx-iris');
  await editFile(path.join(project, 'pyml.config.ts'), (t) => t.replace('plugins: [onnx()],', `plugins: [onnx()],\n  image: { base: '${registry.host}/base/multi:latest' },`));
  const out = path.join(await tempDir(), 'image');
  const r = await pyml(['build', project, '--out', out, '--platform', 'linux/amd64,linux/arm64', '--json']);
  assert.equal(r.code, 0, r.stderr);
  const built = parseJson<{ digest: string; platforms: { platform: string; digest: string; parts: { part: string; digest: string }[] }[] }>(r);
  assert.deepEqual(built.platforms.map((p) => p.platform), ['linux/amd64', 'linux/arm64']);
  const [amd, arm] = built.platforms;
  assert.deepEqual(amd.parts.filter((p) => p.part === 'base').map((p) => p.digest), baseLayers.amd64);
  assert.deepEqual(arm.parts.filter((p) => p.part === 'base').map((p) => p.digest), baseLayers.arm64, 'the arm64 image sits on the arm64 base');
  const layer = (p: typeof amd, part: string) => p.parts.find((x) => x.part === part)!.digest;
  assert.equal(layer(amd, 'weights'), layer(arm, 'weights'), 'weights are shared across platforms');
  assert.notEqual(layer(amd, 'deps'), layer(arm, 'deps'), 'native dependencies differ per platform');

  // Each platform's image carries its own onnxruntime binary and not the other's.
  for (const [platform, own, other] of [['amd64', 'x64', 'arm64'], ['arm64', 'arm64', 'x64']] as const) {
    const source = await openImage(out, { platform: { os: 'linux', architecture: platform } });
    try {
      assert.equal(source.index?.digest, built.digest);
      assert.equal(source.config.architecture, platform);
      assert.ok(await source.readFile(`${ORT}/${own}/onnxruntime_binding.node`), `${platform} has the ${own} binding`);
      assert.equal(await source.readFile(`${ORT}/${other}/onnxruntime_binding.node`), undefined);
      const pymlJson = JSON.parse((await source.readFile('/opt/pyml/pyml.json'))!.toString());
      assert.equal(pymlJson.build.platform.architecture, platform);
    } finally {
      await source.close();
    }
  }

  // inspect shows the index and describes the chosen platform.
  const inspect = await pyml(['inspect', 'image', out, '--platform', 'linux/arm64', '--json']);
  assert.equal(inspect.code, 0, inspect.stderr);
  const d = parseJson<{ platform: string; digest: string; index: { digest: string; platforms: { platform: string; digest: string }[] } }>(inspect);
  assert.equal(d.platform, 'linux/arm64');
  assert.equal(d.digest, arm.digest);
  assert.equal(d.index.digest, built.digest);
  assert.deepEqual(d.index.platforms.map((p) => p.digest), [amd.digest, arm.digest]);
  const text = await pyml(['inspect', 'image', out]);
  assert.match(text.stdout, /index {5}sha256:[0-9a-f]{64}\n {2}\* linux\/amd64 +sha256:[0-9a-f]{64}\n {4}linux\/arm64/);

  // Pushed: the tag names the index; each platform resolves to its own manifest.
  const ref = `${registry.host}/multi/iris:1.0.0`;
  const pushed = await pyml(['push', out, ref, '--json']);
  assert.equal(pushed.code, 0, pushed.stderr);
  assert.equal(parseJson<{ digest: string }>(pushed).digest, built.digest);
  const raw = await runProcess('skopeo', ['inspect', '--tls-verify=false', '--raw', `docker://${ref}`]);
  assert.equal(raw.code, 0, raw.stderr);
  const index = JSON.parse(raw.stdout);
  assert.equal(index.mediaType, 'application/vnd.oci.image.index.v1+json');
  assert.deepEqual(index.manifests.map((m: { digest: string }) => m.digest), [amd.digest, arm.digest]);
  const armSeen = await runProcess('skopeo', ['inspect', '--tls-verify=false', '--override-arch', 'arm64', `docker://${ref}`]);
  assert.equal(armSeen.code, 0, armSeen.stderr);
  // skopeo reports the tag's (the index's) digest, and the arm64 image's own architecture and layers.
  const seen = JSON.parse(armSeen.stdout) as { Digest: string; Architecture: string; Layers: string[] };
  assert.equal(seen.Digest, built.digest);
  assert.equal(seen.Architecture, 'arm64');
  assert.deepEqual(seen.Layers, arm.parts.map((p) => p.digest));
  // And back: pull picks the platform asked for.
  const pulled = await pyml(['pull', ref, '--platform', 'linux/arm64', '--out', path.join(await tempDir(), 'arm'), '--json']);
  assert.equal(pulled.code, 0, pulled.stderr);
  assert.equal(parseJson<{ digest: string }>(pulled).digest, arm.digest);
});

// An arm64 build on the default base is no longer refused: it gets a real arm64 node and glibc (test/provenance/arm64).
test('--tar with several platforms, and a platform pyml does not build for, are refused', async () => {
  const project = await copyExample('onnx-iris');
  const tar = await pyml(['build', project, '--platform', 'linux/amd64,linux/arm64', '--tar', '/tmp/never.tar']);
  assert.equal(tar.code, 2);
  assert.match(tar.stderr, /--tar and --load take one image/);
  const bad = await pyml(['build', project, '--platform', 'linux/riscv64']);
  assert.equal(bad.code, 2);
  assert.match(bad.stderr, /--platform: platform 'linux\/riscv64' is not supported/);
});

test.run();
