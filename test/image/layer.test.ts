import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { createHash, randomBytes } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { chmod, mkdir, readFile, rm, utimes, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { createGunzip } from 'node:zlib';
import { BlobStore, buildLayer, directoryEntries, layerRecord, type FileEntry } from '@pyml/image';
import { cleanupTempDirs, listTar, rejects, tempDir } from './helpers.ts';

test.after.each(cleanupTempDirs);

/** The same small project written into a fresh directory, with host-specific mtimes and umask-ish modes. */
async function writeProject(dir: string, mtime: number): Promise<void> {
  await mkdir(join(dir, 'src', 'lib'), { recursive: true });
  await writeFile(join(dir, 'src', 'index.js'), 'export const answer = 42;\n'.repeat(200));
  await writeFile(join(dir, 'src', 'lib', 'util.js'), 'export function id(x) { return x; }\n');
  await writeFile(join(dir, 'src', 'run.sh'), '#!/bin/sh\nexec node index.js\n');
  await chmod(join(dir, 'src', 'run.sh'), 0o750);
  await chmod(join(dir, 'src', 'lib', 'util.js'), 0o600);
  for (const f of ['index.js', 'lib/util.js', 'run.sh']) await utimes(join(dir, 'src', f), mtime, mtime);
}

test('same files in two different directories give the same layer digest', async () => {
  const a = await tempDir();
  const b = await tempDir();
  await writeProject(a, 1_000_000);
  await writeProject(b, 1_700_000_000);
  const storeA = new BlobStore(join(a, 'store'));
  const storeB = new BlobStore(join(b, 'store'));
  const entriesA = await directoryEntries(join(a, 'src'), '/app');
  const entriesB = (await directoryEntries(join(b, 'src'), '/app')).reverse(); // order given must not matter
  for (const compression of ['gzip', 'none'] as const) {
    const la = await buildLayer(entriesA, { store: storeA, compression, sourceDateEpoch: 0 });
    const lb = await buildLayer(entriesB, { store: storeB, compression, sourceDateEpoch: 0 });
    assert.is(la.digest, lb.digest, `${compression} digest`);
    assert.is(la.diffId, lb.diffId, `${compression} diffId`);
    assert.equal(await readFile(storeA.path(la.digest)), await readFile(storeB.path(lb.digest)));
  }
  const later = await buildLayer(entriesA, { store: storeA, compression: 'none', sourceDateEpoch: 86400 });
  const first = await buildLayer(entriesA, { store: storeA, compression: 'none', sourceDateEpoch: 0 });
  assert.is.not(later.diffId, first.diffId, 'the epoch is part of the content');
});

test('tar headers are normalised: sorted, implicit parents, root owner, fixed mtime, normalised modes', async () => {
  const dir = await tempDir();
  await writeProject(dir, 1_234_567);
  const store = new BlobStore(join(dir, 'store'));
  const layer = await buildLayer([
    ...(await directoryEntries(join(dir, 'src'), '/opt/app')),
    { path: '/opt/app/bin/tool', content: 'x', mode: 0o100 },
    { path: '/opt/app/current', linkTarget: 'lib' },
    { path: '/var/empty', directory: true },
  ], { store, compression: 'gzip', sourceDateEpoch: 1_700_000_000 });
  const blob = await readFile(store.path(layer.digest));
  assert.equal([...blob.subarray(0, 10)], [0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 3], 'gzip header: no name, mtime 0, OS unix');
  const members = await listTar(createReadStream(store.path(layer.digest)).pipe(createGunzip()));
  const summary = members.map((m) => `${m.header.type} ${m.header.name} ${m.header.mode.toString(8)}`);
  assert.equal(summary, [
    'directory opt/ 755',
    'directory opt/app/ 755',
    'directory opt/app/bin/ 755',
    'file opt/app/bin/tool 755',
    'symlink opt/app/current 777',
    'file opt/app/index.js 644',
    'directory opt/app/lib/ 755',
    'file opt/app/lib/util.js 644',
    'file opt/app/run.sh 755',
    'directory var/ 755',
    'directory var/empty/ 755',
  ]);
  for (const { header } of members) {
    assert.is(header.uid, 0);
    assert.is(header.gid, 0);
    assert.is(header.uname, '');
    assert.is(header.gname, '');
    assert.is(header.mtime.getTime(), 1_700_000_000_000);
    assert.is((header as { pax?: unknown }).pax ?? null, null, `${header.name} has no pax header`);
  }
  assert.is(members.find((m) => m.header.name === 'opt/app/current')!.header.linkname, 'lib');
});

test('SOURCE_DATE_EPOCH is the default mtime', async () => {
  const dir = await tempDir();
  const store = new BlobStore(join(dir, 'store'));
  const saved = process.env.SOURCE_DATE_EPOCH;
  process.env.SOURCE_DATE_EPOCH = '86400';
  try {
    const layer = await buildLayer([{ path: '/a', content: 'a' }], { store, compression: 'none' });
    const [member] = await listTar(createReadStream(store.path(layer.digest)));
    assert.is(member.header.mtime.getTime(), 86_400_000);
  } finally {
    if (saved === undefined) delete process.env.SOURCE_DATE_EPOCH;
    else process.env.SOURCE_DATE_EPOCH = saved;
  }
});

test('a built layer opens its own bytes: the blob hashes to its digest, the tar to its diffId', async () => {
  const store = new BlobStore(join(await tempDir(), 'store'));
  for (const compression of ['gzip', 'none'] as const) {
    const layer = await buildLayer([{ path: '/app/a.txt', content: 'a\n' }], { store, compression });
    assert.is(await sha256Of(await layer.openBlob()), layer.digest);
    assert.is(await sha256Of(await layer.openTar()), layer.diffId);
  }
});

async function sha256Of(stream: AsyncIterable<unknown>): Promise<string> {
  const hash = createHash('sha256');
  for await (const chunk of stream) hash.update(chunk as Buffer);
  return `sha256:${hash.digest('hex')}`;
}

test('a remembered layer is reused without reading its sources; a changed source is rebuilt', async () => {
  const dir = await tempDir();
  const store = new BlobStore(join(dir, 'store'));
  const file = join(dir, 'model.bin');
  await writeFile(file, randomBytes(100_000));
  const entries: FileEntry[] = [{ path: '/weights/model.bin', source: file }];

  const built = await buildLayer(entries, { store, compression: 'auto', annotations: { part: 'weights' } });
  assert.is(built.reused, false);
  const again = await buildLayer(entries, { store, compression: 'auto', annotations: { part: 'weights' } });
  assert.is(again.reused, true, 'derived key: unchanged stats reuse the layer');
  assert.equal(layerRecord(again), layerRecord(built));

  // An explicit cache key does not even look at the sources.
  const keyed = await buildLayer(entries, { store, cacheKey: 'weights@v1' });
  assert.is(keyed.digest, built.digest);
  await rm(file);
  const fromKey = await buildLayer(entries, { store, cacheKey: 'weights@v1', annotations: { part: 'w' } });
  assert.is(fromKey.reused, true);
  assert.is(fromKey.digest, built.digest);
  assert.equal(fromKey.annotations, { part: 'w' }, 'annotations are the caller\'s, not the cache\'s');

  // Changed content (and stats) under the same path: derived key misses, new digest.
  await writeFile(file, randomBytes(100_000));
  const changed = await buildLayer(entries, { store, compression: 'auto' });
  assert.is(changed.reused, false);
  assert.is.not(changed.digest, built.digest);

  // A pruned blob is a miss, not a broken image.
  await rm(store.path(changed.digest));
  const rebuilt = await buildLayer(entries, { store, compression: 'auto' });
  assert.is(rebuilt.reused, false);
  assert.is(rebuilt.digest, changed.digest);
});

test('auto compression stores random weights uncompressed and gzips code', async () => {
  const dir = await tempDir();
  const store = new BlobStore(join(dir, 'store'));
  const floats = new Float32Array(1_000_000);
  for (let i = 0; i < floats.length; i++) floats[i] = Math.random() * 2 - 1;
  await writeFile(join(dir, 'weights.bin'), Buffer.from(floats.buffer));
  const code = Array.from({ length: 3000 }, (_, i) => `export function f${i}(x) { return x * ${i} + Math.sqrt(x); }\n`).join('');
  await writeFile(join(dir, 'bundle.js'), code);

  const weights = await buildLayer([{ path: '/w/weights.bin', source: join(dir, 'weights.bin') }], { store });
  assert.is(weights.mediaType, 'application/vnd.oci.image.layer.v1.tar');
  assert.is(weights.digest, weights.diffId);
  const js = await buildLayer([{ path: '/app/bundle.js', source: join(dir, 'bundle.js') }], { store });
  assert.is(js.mediaType, 'application/vnd.oci.image.layer.v1.tar+gzip');
  assert.ok(js.size < code.length / 3, 'code compresses well');
  assert.is.not(js.digest, js.diffId);
});

test('progress is reported per chunk up to the tar size', async () => {
  const dir = await tempDir();
  const store = new BlobStore(join(dir, 'store'));
  await writeFile(join(dir, 'big'), randomBytes(3 * 1024 * 1024));
  const seen: number[] = [];
  const layer = await buildLayer([{ path: '/big', source: join(dir, 'big') }], { store, compression: 'none', onProgress: (n) => seen.push(n) });
  assert.ok(seen.length > 1, 'several progress calls');
  assert.ok(seen.every((n, i) => i === 0 || n > seen[i - 1]), 'monotonic');
  assert.is(seen[seen.length - 1], layer.size);
});

test('bad entries are refused with the path named', async () => {
  const dir = await tempDir();
  const store = new BlobStore(join(dir, 'store'));
  await rejects(() => buildLayer([{ path: 'relative/x', content: '' }], { store }), /absolute/);
  await rejects(() => buildLayer([{ path: '/a/../b', content: '' }], { store }), /"\.\."/);
  await rejects(() => buildLayer([{ path: '/x', content: '' }, { path: '/x/', content: 'b' }], { store }), /two entries for \/x/);
  await rejects(() => buildLayer([{ path: '/x', content: 'a', linkTarget: 'b' }], { store }), /exactly one/);
  await rejects(() => buildLayer([{ path: '/x', source: join(dir, 'missing') }], { store }), /\/x: cannot read source/);
  await rejects(() => buildLayer([{ path: '/f', content: '' }, { path: '/f/g', content: '' }], { store }), /\/f, which is a file/);
});

test.run();
