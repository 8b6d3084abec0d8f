import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { createReadStream } from 'node:fs';
import { copyFile, mkdir, open, readFile, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { createGunzip } from 'node:zlib';
import { pipeline } from 'node:stream/promises';
import { createWriteStream } from 'node:fs';
import { BlobStore, openImage, writeLayout, writeTarball, type OpenedImage } from '@pyml/image';
import { cleanupTempDirs, listTar, rejects, sampleImage, sampleImageWith, tempDir, tool, writeRawTar } from './helpers.ts';

test.after.each(cleanupTempDirs);

async function checkSample(source: OpenedImage, kind: 'layout' | 'tarball', ours = true): Promise<void> {
  assert.is(source.kind, kind);
  assert.is(source.layers.length, 3);
  if (ours) assert.equal(source.layers.map((l) => l.annotations?.['dev.pyml.part']), ['base', 'weights', 'code']);
  assert.equal(source.config.config?.Entrypoint, ['/bin/run']);
  assert.is((await source.readFile('/app/keep.js'))?.toString(), 'version 2\n', 'top layer wins');
  assert.is((await source.readFile('/bin/run'))?.toString(), '#!/bin/sh\necho run\n', 'lower layer shows through');
  assert.is(await source.readFile('/app/old.js'), undefined, 'whiteout');
  assert.is(await source.readFile('/app/cache/a'), undefined, 'opaque directory hides lower layers');
  assert.is((await source.readFile('/app/cache/c'))?.toString(), 'c');
  assert.is((await source.readFile('/etc/keep-link'))?.toString(), 'version 2\n', 'symlink followed inside the image');
  assert.is(await source.readFile('/nope'), undefined);
  const results = await source.verify();
  assert.is(results.length, 2 + 3 * 3, "manifest, config, and per layer: digest, diffId, entries");
  assert.ok(results.every((r) => r.ok), JSON.stringify(results.filter((r) => !r.ok)));
  const chunks: Buffer[] = [];
  for await (const c of await source.openBlob(source.manifest.config.digest)) chunks.push(c as Buffer);
  assert.equal(JSON.parse(Buffer.concat(chunks).toString()), source.config);
}

test('openImage reads a layout and a tarball; readFile sees the merged filesystem', async () => {
  const dir = await tempDir();
  const store = new BlobStore(join(dir, 'store'));
  const image = await sampleImage(store);
  const { manifestDigest } = await writeLayout(image, join(dir, 'layout'), { store, refName: 'v1' });
  await writeTarball(image, join(dir, 'image.tar'), { refName: 'v1', repoTags: ['sample:v1'] });
  for (const [ref, kind] of [[join(dir, 'layout'), 'layout'], [join(dir, 'image.tar'), 'tarball'], [`${join(dir, 'layout')}:v1`, 'layout']] as const) {
    const source = await openImage(ref);
    try {
      assert.is(source.manifestDigest, manifestDigest, ref);
      await checkSample(source, kind);
    } finally {
      await source.close();
    }
  }
});

test('openImage reads a docker-archive without index.json (as skopeo writes it)', async () => {
  const dir = await tempDir();
  const store = new BlobStore(join(dir, 'store'));
  const image = await sampleImage(store);
  await writeLayout(image, join(dir, 'layout'), { store, refName: 'v1' });
  const archive = join(dir, 'docker.tar');
  await tool('skopeo', ['copy', '-q', `oci:${join(dir, 'layout')}:v1`, `docker-archive:${archive}:sample:v1`]);
  const members = (await listTar(createReadStream(archive))).map((m) => m.header.name);
  assert.ok(members.includes('manifest.json') && !members.includes('index.json'), members.join(' '));
  const source = await openImage(archive);
  try {
    assert.is(source.kind, 'tarball');
    assert.is(source.config.config?.Labels?.model, 'sample');
    assert.equal(source.config.rootfs.diff_ids, image.layers.map((l) => l.diffId));
    assert.is((await source.readFile('/app/keep.js'))?.toString(), 'version 2\n');
    assert.is(await source.readFile('/app/old.js'), undefined);
    assert.ok((await source.verify()).every((r) => r.ok));
  } finally {
    await source.close();
  }
});

test('openImage reads an oci-archive written by skopeo', async () => {
  const dir = await tempDir();
  const store = new BlobStore(join(dir, 'store'));
  const image = await sampleImage(store);
  await writeLayout(image, join(dir, 'layout'), { store, refName: 'v1' });
  const archive = join(dir, 'oci.tar');
  await tool('skopeo', ['copy', '-q', `oci:${join(dir, 'layout')}:v1`, `oci-archive:${archive}:v1`]);
  const source = await openImage(archive);
  try {
    // skopeo may recompress the uncompressed weights layer; the uncompressed content must be ours.
    assert.equal(source.config.rootfs.diff_ids, image.layers.map((l) => l.diffId));
    await checkSample(source, 'tarball', false); // skopeo drops the annotations of layers it recompresses
  } finally {
    await source.close();
  }
});

test('verify names a corrupted layer; openBlob errors at its end; a corrupted config fails openImage', async () => {
  const dir = await tempDir();
  const store = new BlobStore(join(dir, 'store'));
  const image = await sampleImage(store);
  const layout = join(dir, 'layout');
  const written = await writeLayout(image, layout, { store });
  const weights = image.layers[1].digest;
  const blob = join(layout, 'blobs/sha256', weights.slice(7));
  // Break the hard link first: corrupt the layout's copy, not the store's.
  await rm(blob);
  await copyFile(store.path(weights), blob);
  const handle = await open(blob, 'r+');
  await handle.write(Buffer.from('corrupt'), 0, 7, 1000);
  await handle.close();

  const source = await openImage(layout);
  const results = await source.verify();
  const bad = results.filter((r) => !r.ok);
  assert.equal(bad.map((r) => [r.what, r.digest]), [['layer 1', weights], ['layer 1 diffId', image.layers[1].diffId]]);
  assert.ok(bad[0].actual && bad[0].actual !== weights);
  assert.ok(await store.has(weights), 'the store copy is intact');
  const stream = await source.openBlob(weights);
  await rejects(async () => { for await (const _ of stream); }, new RegExp(`blob ${weights}: content hashes to sha256:`));
  const layerStream = await source.layers[1].openBlob();
  await rejects(async () => { for await (const _ of layerStream); }, new RegExp(`blob ${weights}: content hashes to sha256:`));
  await rejects(() => source.openBlob('sha256:../../etc/passwd'), /not a sha256 digest/);
  await rejects(() => source.readFile('/weights/w.bin'), new RegExp(`blob ${weights}: content hashes to sha256:`));

  await writeFile(join(layout, 'blobs/sha256', written.configDigest.slice(7)), '{"architecture":"arm64"}');
  await rejects(() => openImage(layout), new RegExp(`image ${layout}: config ${written.configDigest}: content hashes to`));
});

test('openImage errors name the ref and the problem', async () => {
  const dir = await tempDir();
  const store = new BlobStore(join(dir, 'store'));
  const image = await sampleImage(store);
  await rejects(() => openImage(join(dir, 'missing')), new RegExp(`image ${join(dir, 'missing')}: no such file`));

  // Two manifests in one layout: pick by name, or fail listing them.
  const layout = join(dir, 'layout');
  await writeLayout(image, layout, { store, refName: 'a' });
  const other = await writeLayout(await sampleImageWith(image.layers.slice(0, 1)), join(dir, 'other'), { store, refName: 'b' });
  const indexA = JSON.parse(await readFile(join(layout, 'index.json'), 'utf8'));
  const indexB = JSON.parse(await readFile(join(dir, 'other/index.json'), 'utf8'));
  for (const name of ['config', 'manifest']) {
    const digest = name === 'config' ? other.configDigest : other.manifestDigest;
    await copyFile(join(dir, 'other/blobs/sha256', digest.slice(7)), join(layout, 'blobs/sha256', digest.slice(7)));
  }
  indexA.manifests.push(indexB.manifests[0]);
  await writeFile(join(layout, 'index.json'), JSON.stringify(indexA));
  await rejects(() => openImage(layout), new RegExp(`image ${layout}: index.json lists 2 manifests; name one as PATH:REF \\(it has: a, b\\)`));
  const b = await openImage(`${layout}:b`);
  assert.is(b.manifestDigest, other.manifestDigest);
  await rejects(() => openImage(`${layout}:c`), /no manifests named "c"/);

  const notImage = join(dir, 'not-image.tar');
  await writeRawTar(notImage, [{ name: 'hello.txt', content: 'hi' }]);
  await rejects(() => openImage(notImage), /not-image.tar: tarball has neither index.json/);
  await mkdir(join(dir, 'empty'));
  await rejects(() => openImage(join(dir, 'empty')), /empty: no index.json/);
});

test('a gzip layer reads back to the tar its diffId names', async () => {
  const dir = await tempDir();
  const store = new BlobStore(join(dir, 'store'));
  const image = await sampleImage(store);
  const source = await openImage((await writeLayout(image, join(dir, 'l'), { store }), join(dir, 'l')));
  const out = join(dir, 'layer.tar');
  await pipeline(await source.openBlob(image.layers[0].digest), createGunzip(), createWriteStream(out));
  const { createHash } = await import('node:crypto');
  const hash = createHash('sha256');
  for await (const c of createReadStream(out)) hash.update(c as Buffer);
  assert.is('sha256:' + hash.digest('hex'), image.layers[0].diffId);
});

test('a read image is an Image: the writers write it again byte for byte, with no store', async () => {
  const dir = await tempDir();
  const store = new BlobStore(join(dir, 'store'));
  const image = await sampleImage(store);
  const written = await writeLayout(image, join(dir, 'l'), { store, refName: 'v1' });
  for (const ref of [join(dir, 'l'), (await writeTarball(image, join(dir, 'i.tar'), { refName: 'v1' }), join(dir, 'i.tar'))]) {
    const read = await openImage(ref);
    const copy = join(dir, `copy-${read.kind}`);
    assert.is((await writeLayout(read, copy, { refName: 'v1' })).manifestDigest, written.manifestDigest);
    assert.equal(await readFile(join(copy, 'index.json')), await readFile(join(dir, 'l/index.json')));
    await writeTarball(read, `${copy}.tar`, { refName: 'v1' });
    assert.equal(await readFile(`${copy}.tar`), await readFile(join(dir, 'i.tar')), 'the same tarball');
    const again = await openImage(copy);
    assert.equal((await again.verify()).filter((r) => !r.ok), []);
    await again.close();
    await read.close();
  }
});

test('a read image\'s layers are layers: each opens its blob and its tar, checked against digest and diffId', async () => {
  const dir = await tempDir();
  const store = new BlobStore(join(dir, 'store'));
  const image = await sampleImage(store);
  await writeLayout(image, join(dir, 'l'), { store });
  const source = await openImage(join(dir, 'l'));
  const { createHash } = await import('node:crypto');
  const sha256Of = async (stream: AsyncIterable<unknown>) => {
    const hash = createHash('sha256');
    for await (const c of stream) hash.update(c as Buffer);
    return 'sha256:' + hash.digest('hex');
  };
  assert.equal(source.layers.map((l) => [l.digest, l.diffId, l.size, l.mediaType]), image.layers.map((l) => [l.digest, l.diffId, l.size, l.mediaType]));
  for (const layer of source.layers) {
    assert.is(await sha256Of(await layer.openBlob()), layer.digest);
    assert.is(await sha256Of(await layer.openTar()), layer.diffId);
  }
  await source.close();
});

test.run();
