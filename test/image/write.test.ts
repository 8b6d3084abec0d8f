import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { createReadStream } from 'node:fs';
import { createHash } from 'node:crypto';
import { lstat, mkdir, readFile, readdir, readlink, rm, stat, writeFile } from 'node:fs/promises';
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { basename, join } from 'node:path';
import { BlobStore, appendLayers, layerRecord, storedLayer, writeIndexLayout, writeLayout, writeTarball, type BuiltLayer, type Layer } from '@pyml/image';
import { cleanupTempDirs, listTar, rejects, sampleImage, sampleImageWith, tempDir, tool } from './helpers.ts';

test.after.each(cleanupTempDirs);

test('skopeo and umoci accept a written layout; the rootfs has our files, modes and whiteouts applied', async () => {
  const dir = await tempDir();
  const store = new BlobStore(join(dir, 'store'));
  const image = await sampleImage(store);
  const layout = join(dir, 'layout');
  const written = await writeLayout(image, layout, { store, refName: 'v1' });

  assert.is(JSON.parse(await readFile(join(layout, 'oci-layout'), 'utf8')).imageLayoutVersion, '1.0.0');
  const index = JSON.parse(await readFile(join(layout, 'index.json'), 'utf8'));
  assert.is(index.manifests[0].digest, written.manifestDigest);
  assert.is(index.manifests[0].annotations['org.opencontainers.image.ref.name'], 'v1');
  assert.equal(index.manifests[0].platform, { os: 'linux', architecture: 'amd64' });
  assert.equal(written.manifest.layers.map((l) => l.annotations?.['dev.pyml.part']), ['base', 'weights', 'code']);
  assert.is(written.manifest.layers[1].mediaType, 'application/vnd.oci.image.layer.v1.tar');
  // Blobs are hard links to the store, not copies.
  const [blobInLayout, blobInStore] = await Promise.all([stat(join(layout, 'blobs/sha256', image.layers[1].digest.slice(7))), stat(store.path(image.layers[1].digest))]);
  assert.is(blobInLayout.ino, blobInStore.ino);

  const inspected = JSON.parse(await tool('skopeo', ['inspect', `oci:${layout}:v1`]));
  assert.is(inspected.Digest, written.manifestDigest);
  assert.equal(inspected.Layers, image.layers.map((l) => l.digest));
  assert.equal(inspected.Labels, { model: 'sample' });
  const rawConfig = JSON.parse(await tool('skopeo', ['inspect', '--config', `oci:${layout}:v1`]));
  assert.equal(rawConfig.rootfs.diff_ids, image.layers.map((l) => l.diffId));
  assert.is(rawConfig.history.length, 3);

  const bundle = join(dir, 'bundle');
  await tool('umoci', ['unpack', '--rootless', '--image', `${layout}:v1`, bundle]);
  const rootfs = join(bundle, 'rootfs');
  assert.is(await readFile(join(rootfs, 'app/keep.js'), 'utf8'), 'version 2\n');
  assert.equal((await readdir(join(rootfs, 'app'))).sort(), ['cache', 'keep.js']);
  assert.equal(await readdir(join(rootfs, 'app/cache')), ['c']);
  assert.is((await stat(join(rootfs, 'bin/run'))).mode & 0o777, 0o755);
  assert.is((await stat(join(rootfs, 'app/keep.js'))).mode & 0o777, 0o644);
  assert.is((await stat(join(rootfs, 'app'))).mode & 0o777, 0o755);
  assert.is(await readlink(join(rootfs, 'etc/keep-link')), '/app/keep.js');
  assert.is((await stat(join(rootfs, 'weights/w.bin'))).size, 200_000);
});

test('the same image written twice gives byte-identical layouts and tarballs', async () => {
  const dir = await tempDir();
  const store = new BlobStore(join(dir, 'store'));
  const image = await sampleImage(store);
  const a = await writeLayout(image, join(dir, 'a'), { store, refName: 'x' });
  const b = await writeLayout(image, join(dir, 'b'), { store, refName: 'x' });
  assert.is(a.manifestDigest, b.manifestDigest);
  assert.equal(await readFile(join(dir, 'a/index.json')), await readFile(join(dir, 'b/index.json')));
  await writeTarball(image, join(dir, 'a.tar'), { refName: 'x', repoTags: ['sample:1'] });
  await writeTarball(image, join(dir, 'b.tar'), { refName: 'x', repoTags: ['sample:1'] });
  assert.equal(await readFile(join(dir, 'a.tar')), await readFile(join(dir, 'b.tar')));
});

test('writeLayout replaces an old image only when the new one is complete', async () => {
  const dir = await tempDir();
  const store = new BlobStore(join(dir, 'store'));
  const image = await sampleImage(store);
  const layout = join(dir, 'layout');
  const first = await writeLayout(image, layout, { store });
  const missing: Layer = storedLayer({ ...layerRecord(image.layers[0]), digest: 'sha256:' + 'f'.repeat(64) }, store);
  await rejects(() => writeLayout(appendLayers(image, missing), layout, { store }), /sha256:f{64} is not in the blob store/);
  const index = JSON.parse(await readFile(join(layout, 'index.json'), 'utf8'));
  assert.is(index.manifests[0].digest, first.manifestDigest, 'old image untouched');
  assert.equal((await readdir(dir)).sort(), ['layout', 'store'], 'no temp dirs left behind');

  const smaller = appendLayers(await sampleImageWith([]), image.layers[2]);
  const second = await writeLayout(smaller, layout, { store });
  const index2 = JSON.parse(await readFile(join(layout, 'index.json'), 'utf8'));
  assert.is(index2.manifests[0].digest, second.manifestDigest, 'replaced');
  assert.is((await readdir(join(layout, 'blobs/sha256'))).length, 3, 'config, one layer, manifest: old blobs gone');
  assert.equal((await readdir(dir)).sort(), ['layout', 'store']);
});

test('writeTarball of an image whose layer cannot be read fails naming the layer, and leaves no file', async () => {
  const dir = await tempDir();
  const store = new BlobStore(join(dir, 'store'));
  const image = await sampleImage(store);
  const missing = storedLayer({ ...layerRecord(image.layers[0]), digest: 'sha256:' + 'f'.repeat(64) }, store);
  await rejects(() => writeTarball(appendLayers(image, missing), join(dir, 'out', 'image.tar')), /writing image tarball .*: layer sha256:f{64} is not in the blob store/);
  assert.equal(await readdir(join(dir, 'out')), []);
});

test('skopeo accepts the tarball as oci-archive and as docker-archive', async () => {
  const dir = await tempDir();
  const store = new BlobStore(join(dir, 'store'));
  const image = await sampleImage(store);
  const file = join(dir, 'out', 'image.tar');
  const written = await writeTarball(image, file, { refName: 'v1', repoTags: ['sample:v1'] });

  const asOci = JSON.parse(await tool('skopeo', ['inspect', `oci-archive:${file}`]));
  assert.is(asOci.Digest, written.manifestDigest);
  assert.equal(asOci.Layers, image.layers.map((l) => l.digest));
  const asDocker = JSON.parse(await tool('skopeo', ['inspect', `docker-archive:${file}`]));
  assert.equal(asDocker.Labels, { model: 'sample' });
  assert.is(asDocker.Layers.length, 3);
  const dockerConfig = JSON.parse(await tool('skopeo', ['inspect', '--config', `docker-archive:${file}`]));
  assert.equal(dockerConfig.rootfs.diff_ids, image.layers.map((l) => l.diffId));

  const members = await listTar(createReadStream(file));
  const names = members.map((m) => m.header.name);
  assert.equal(names.slice(0, 5), ['oci-layout', 'index.json', 'manifest.json', 'blobs/', 'blobs/sha256/']);
  const dockerManifest = JSON.parse(members[2].content.toString());
  assert.equal(dockerManifest, [{
    Config: `blobs/sha256/${written.configDigest.slice(7)}`,
    Layers: image.layers.map((l) => `blobs/sha256/${l.digest.slice(7)}`),
    RepoTags: ['sample:v1'],
  }]);
  assert.ok(members.every((m) => m.header.mtime.getTime() === 0 && m.header.uid === 0));
  assert.equal((await readdir(join(dir, 'out'))), ['image.tar'], 'temp file renamed away');
  assert.ok((await lstat(file)).isFile());
});

test('a store that holds its blobs puts back what a prune removed mid-build: layout and tarball are whole', async () => {
  const dir = await tempDir();
  const storeDir = join(dir, 'store');
  // Built once (the cache a later build finds), then found again by a build that holds what it uses.
  await sampleImage(new BlobStore(storeDir));
  const store = new BlobStore(storeDir, { hold: true });
  const image = await sampleImage(store);
  // Base and code layers are found in the cache; the weights (random bytes) are written anew: both kinds are held.
  assert.equal(image.layers.map((l) => (l as BuiltLayer).reused), [true, false, true]);
  const held = await readdir(`/proc/${process.pid}/fd`).then((fds) => Promise.all(fds.map((fd) => readlink(`/proc/${process.pid}/fd/${fd}`).catch(() => ''))));
  for (const layer of image.layers) assert.ok(held.includes(store.path(layer.digest)), `blob ${layer.digest} is held open (a prune reads that from /proc)`);

  // What a prune that looked before the build opened them would do.
  for (const name of await readdir(store.blobsDir)) await rm(join(store.blobsDir, name));
  const layout = join(dir, 'layout');
  const written = await writeLayout(image, layout, { store, refName: 'v1' });
  const file = join(dir, 'image.tar');
  await writeTarball(image, file, { refName: 'v1' });
  for (const layer of image.layers) {
    const bytes = await readFile(join(layout, 'blobs/sha256', layer.digest.slice(7)));
    assert.is(`sha256:${createHash('sha256').update(bytes).digest('hex')}`, layer.digest, 'put back byte for byte');
    assert.ok(await store.has(layer.digest), 'and back in the store');
  }
  assert.is(JSON.parse(await tool('skopeo', ['inspect', `oci:${layout}:v1`])).Digest, written.manifestDigest);
  assert.is(JSON.parse(await tool('skopeo', ['inspect', `oci-archive:${file}`])).Digest, written.manifestDigest);
  await store.release();

  // A store that does not hold its blobs cannot put them back: the error names the missing blob.
  const plain = new BlobStore(join(dir, 'plain'));
  const other = await sampleImage(plain);
  await rm(plain.path(other.layers[1].digest));
  await rejects(() => writeLayout(other, join(dir, 'plain-layout'), { store: plain }), new RegExp(`layer ${other.layers[1].digest} is not in the blob store`));
  await rejects(() => stat(join(dir, 'plain-layout')), /ENOENT/);
});

test('writeLayout and writeIndexLayout never replace a directory of other files, nor a file', async () => {
  const dir = await tempDir();
  const store = new BlobStore(join(dir, 'store'));
  const image = await sampleImage(store);
  const mine = join(dir, 'mine');
  await mkdir(mine);
  await writeFile(join(mine, 'notes.txt'), 'mine\n');
  await rejects(() => writeLayout(image, mine, { store }), /mine holds files and is not an OCI image layout \(no oci-layout file\); refusing to replace it/);
  const written = await writeLayout(image, join(dir, 'layout'), { store });
  await rejects(() => writeIndexLayout([{ manifestDigest: written.manifestDigest, platform: { os: 'linux', architecture: 'amd64' } }], join(mine, 'notes.txt'), { store }), /notes\.txt exists and is not a directory/);
  assert.equal(await readdir(mine), ['notes.txt']);
  assert.is(await readFile(join(mine, 'notes.txt'), 'utf8'), 'mine\n');
  assert.equal((await readdir(dir)).sort(), ['layout', 'mine', 'store']);
});

test('sweepDeadTemps removes what stopped builds left in the store\'s temp dir, and nothing of a live one', async () => {
  const dir = await tempDir();
  const store = new BlobStore(join(dir, 'store'));
  const dead = spawn('true');
  await once(dead, 'exit');
  const tmp = join(dir, 'store', 'tmp');
  await mkdir(join(tmp, `${dead.pid}-platform-0011aabb`), { recursive: true });
  await writeFile(join(tmp, `${dead.pid}-0123456789abcdef`), 'half a layer');
  const live = await store.tempPath();
  await writeFile(live, 'this process is writing it');
  await store.sweepDeadTemps();
  assert.equal(await readdir(tmp), [basename(live)]);
});

test.run();
