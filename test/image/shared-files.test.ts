import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { appendFile, chmod, copyFile, lstat, readdir, readFile, readlink, rm, stat, writeFile } from 'node:fs/promises';
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { basename, join, relative } from 'node:path';
import { BlobStore, SharedFiles, appendLayers, buildLayer, openImage, unpack, writeLayout, type Image } from '@pyml/image';
import { cleanupTempDirs, rejects, sampleImage, sampleImageWith, tamperedLayout, tempDir } from './helpers.ts';

test.after.each(cleanupTempDirs);

/** Every regular file under `root`: relative path → content, permission bits and inode. */
async function regularFiles(root: string): Promise<Map<string, { content: string; mode: number; ino: number }>> {
  const out = new Map<string, { content: string; mode: number; ino: number }>();
  async function walk(dir: string): Promise<void> {
    for (const name of await readdir(dir)) {
      const path = join(dir, name);
      const info = await lstat(path);
      if (info.isDirectory()) await walk(path);
      else if (info.isFile()) out.set(relative(root, path), { content: (await readFile(path)).toString('base64'), mode: info.mode & 0o7777, ino: info.ino });
    }
  }
  await walk(root);
  return out;
}

/** The sample image with another top layer: a new keep.js, and bin/run's bytes again under another mode. */
async function secondVersion(store: BlobStore, first: Image): Promise<Image> {
  const top = await buildLayer([
    { path: '/app/keep.js', content: 'version 3\n' },
    { path: '/bin/run-copy', content: '#!/bin/sh\necho run\n', mode: 0o644 },
  ], { store, compression: 'gzip' });
  return appendLayers(await sampleImageWith(first.layers.slice(0, 2)), top);
}

async function layouts(dir: string): Promise<[string, string]> {
  const store = new BlobStore(join(dir, 'store'));
  const first = await sampleImage(store);
  await writeLayout(first, join(dir, 'v1'), { store });
  await writeLayout(await secondVersion(store, first), join(dir, 'v2'), { store });
  return [join(dir, 'v1'), join(dir, 'v2')];
}

test('two images unpacked with a shared store hold their common files once, each tree as it would be unshared', async () => {
  const dir = await tempDir();
  const [v1, v2] = await layouts(dir);
  const shared = join(dir, 'cache/files');
  for (const [name, ref] of [['v1', v1], ['v2', v2]]) {
    await unpack(await openImage(ref), join(dir, 'cache', name), { sharedFilesDir: shared });
    await unpack(await openImage(ref), join(dir, 'plain', name));
  }
  const one = await regularFiles(join(dir, 'cache/v1'));
  const two = await regularFiles(join(dir, 'cache/v2'));
  for (const name of ['v1', 'v2']) {
    const sharedTree = await regularFiles(join(dir, 'cache', name));
    const plainTree = await regularFiles(join(dir, 'plain', name));
    assert.equal([...sharedTree.keys()].sort(), [...plainTree.keys()].sort(), `${name}: the same files`);
    for (const [path, file] of plainTree) {
      assert.is(sharedTree.get(path)?.content, file.content, `${name}/${path}: same bytes`);
      assert.is(sharedTree.get(path)?.mode, file.mode, `${name}/${path}: same mode`);
    }
  }
  // The base and weights layers' files are one inode in both trees; what differs is not.
  assert.is(one.get('bin/run')?.ino, two.get('bin/run')?.ino);
  assert.is(one.get('weights/w.bin')?.ino, two.get('weights/w.bin')?.ino);
  assert.is.not(one.get('app/keep.js')?.ino, two.get('app/keep.js')?.ino);
  assert.is(Buffer.from(two.get('app/keep.js')!.content, 'base64').toString(), 'version 3\n');
  // Same bytes under another mode cannot share an inode: a link would change the other file's mode.
  assert.is.not(two.get('bin/run-copy')?.ino, two.get('bin/run')?.ino);
  assert.is(two.get('bin/run-copy')?.mode, 0o644);
  assert.is((await stat(join(dir, 'cache/v1/weights/w.bin'))).nlink, 3, 'the weights: two trees and the store');
  assert.ok(!(await readdir(shared)).some((n) => n.startsWith('.incoming-')), 'no temp file left in the store');
});

test('prune removes stored files only once no tree links them', async () => {
  const dir = await tempDir();
  const [v1, v2] = await layouts(dir);
  const files = new SharedFiles(join(dir, 'cache/files'));
  await unpack(await openImage(v1), join(dir, 'cache/v1'), { sharedFilesDir: files.dir });
  await unpack(await openImage(v2), join(dir, 'cache/v2'), { sharedFilesDir: files.dir });
  const stored = (await readdir(files.dir)).filter((n) => n !== '.layers').length;

  await rm(join(dir, 'cache/v1'), { recursive: true });
  const first = await files.prune();
  // v1 alone had its keep.js ('version 2') and app/cache/c; the base's keep.js ('version 1') is overwritten in both
  // trees; everything else v2 holds too.
  assert.is(first.files, 3);
  assert.is(first.bytes, 'version 1\n'.length + 'version 2\n'.length + 'c'.length);
  assert.is(await readFile(join(dir, 'cache/v2/weights/w.bin')).then((b) => b.length), 200_000, 'v2 keeps its files');

  await rm(join(dir, 'cache/v2'), { recursive: true });
  // What an unpack killed mid-file left (named by its pid) goes too; a live unpack's file stays.
  const dead = spawn('true');
  await once(dead, 'exit');
  await writeFile(join(files.dir, `.incoming-${dead.pid}-00112233aabbccdd`), 'half of node');
  const live = await files.tempPath();
  await writeFile(live, 'being written');
  const second = await files.prune();
  assert.equal((await readdir(files.dir)).filter((n) => n.startsWith('.incoming-')), [basename(live)]);
  await rm(live);
  assert.is(first.files + second.files, stored, 'every stored file is gone with the last tree');
  assert.equal(await readdir(files.dir), ['.layers']);
  assert.equal(await readdir(join(files.dir, '.layers')), [], 'no layer record outlives its files');
});

/** Every entry under `root`: path → what it is (file bytes and mode, directory mode, symlink target). */
async function tree(root: string): Promise<Record<string, string>> {
  const out: Record<string, string> = {};
  async function walk(dir: string): Promise<void> {
    for (const name of (await readdir(dir)).sort()) {
      const path = join(dir, name);
      const info = await lstat(path);
      const rel = relative(root, path);
      if (info.isDirectory()) {
        out[rel] = `dir ${(info.mode & 0o7777).toString(8)}`;
        await walk(path);
      } else if (info.isSymbolicLink()) out[rel] = `link ${await readlink(path)}`;
      else out[rel] = `file ${(info.mode & 0o7777).toString(8)} ${info.mtime.getTime()} ${(await readFile(path)).toString('base64')}`;
    }
  }
  await walk(root);
  return out;
}

test('a layer unpacked before is rebuilt from the store without its blob, whiteouts included, the same tree as ever', async () => {
  const dir = await tempDir();
  const [v1, v2] = await layouts(dir);
  const shared = join(dir, 'cache/files');
  for (const [name, ref] of [['v1', v1], ['v2', v2]]) await unpack(await openImage(ref), join(dir, 'plain', name));
  assert.equal(await unpack(await openImage(v1), join(dir, 'cache/v1'), { sharedFilesDir: shared }), { layers: 3, layersFromStore: 0, specialBitsStripped: 0, devicesSkipped: 0 });

  // v2 shares v1's base and weights layers: their blobs are not even there, and are not needed.
  const source = await openImage(v2);
  for (const layer of source.layers.slice(0, 2)) await rm(join(v2, 'blobs/sha256', layer.digest.slice('sha256:'.length)));
  assert.equal(await unpack(source, join(dir, 'cache/v2'), { sharedFilesDir: shared }), { layers: 3, layersFromStore: 2, specialBitsStripped: 0, devicesSkipped: 0 });
  assert.equal(await tree(join(dir, 'cache/v2')), await tree(join(dir, 'plain/v2')));

  // v1 again: every layer from the store, its top layer's whiteouts and opaque directory applied as from the blob.
  assert.equal(await unpack(await openImage(v1), join(dir, 'cache/v1-again'), { sharedFilesDir: shared }), { layers: 3, layersFromStore: 3, specialBitsStripped: 0, devicesSkipped: 0 });
  const again = await tree(join(dir, 'cache/v1-again'));
  assert.equal(again, await tree(join(dir, 'plain/v1')));
  assert.is(again['app/old.js'], undefined, 'whited out');
  assert.equal(Object.keys(again).filter((p) => p.startsWith('app/cache/')), ['app/cache/c'], 'opaque directory');
});

test('once a prune removes the files a layer record needs, the next unpack reads its blob again', async () => {
  const dir = await tempDir();
  const [v1] = await layouts(dir);
  const files = new SharedFiles(join(dir, 'cache/files'));
  await unpack(await openImage(v1), join(dir, 'cache/v1'), { sharedFilesDir: files.dir });
  await rm(join(dir, 'cache/v1'), { recursive: true });
  await files.prune();
  assert.equal(await unpack(await openImage(v1), join(dir, 'cache/v1'), { sharedFilesDir: files.dir }), { layers: 3, layersFromStore: 0, specialBitsStripped: 0, devicesSkipped: 0 });
  await unpack(await openImage(v1), join(dir, 'plain'));
  assert.equal(await tree(join(dir, 'cache/v1')), await tree(join(dir, 'plain')));
});

test('a layer that fails its digest leaves no tree and no temp file in the store', async () => {
  const dir = await tempDir();
  const { layout } = await tamperedLayout(dir);
  const shared = join(dir, 'cache/files');
  await rejects(async () => unpack(await openImage(layout), join(dir, 'cache/v1'), { sharedFilesDir: shared }), /content hashes to/);
  await rejects(() => stat(join(dir, 'cache/v1')), /ENOENT/);
  assert.ok(!(await readdir(shared)).some((n) => n.startsWith('.incoming-')), 'no temp file left in the store');
});

test('a layer record that cannot be replayed is passed over: the unpack reads the blobs, and the tree is right', async () => {
  const dir = await tempDir();
  const [v1] = await layouts(dir);
  const shared = join(dir, 'cache/files');
  await unpack(await openImage(v1), join(dir, 'cache/v1'), { sharedFilesDir: shared });
  // Records are the store's own, but a bad one (here: an entry that would climb out) must not spoil an unpack.
  const records = join(shared, '.layers');
  const [first] = await readdir(records);
  const entries = JSON.parse(await readFile(join(records, first), 'utf8')) as { name: string }[];
  entries[entries.length - 1].name = '../escaped';
  await writeFile(join(records, first), JSON.stringify(entries));
  assert.equal(await unpack(await openImage(v1), join(dir, 'cache/again'), { sharedFilesDir: shared }), { layers: 3, layersFromStore: 0, specialBitsStripped: 0, devicesSkipped: 0 });
  await unpack(await openImage(v1), join(dir, 'plain'));
  assert.equal(await tree(join(dir, 'cache/again')), await tree(join(dir, 'plain')));
  await rejects(() => stat(join(dir, 'cache/escaped')), /ENOENT/);
});

test('a replayed record obeys unpack\'s rules: a hard link copying a symlink out is refused, a setuid stored copy is never linked', async () => {
  const dir = await tempDir();
  const [v1] = await layouts(dir);
  const shared = join(dir, 'cache/files');
  await unpack(await openImage(v1), join(dir, 'cache/v1'), { sharedFilesDir: shared });
  const source = await openImage(v1);
  const recordOf = (i: number) => join(shared, '.layers', `${source.config.rootfs.diff_ids[i].replace(':', '-')}.json`);
  type Entry = { name: string; type: string; mode: number; uid: number; gid: number; mtime: number; linkname?: string; stored?: string };

  // The base layer's etc/keep-link (-> ../app/keep.js) copied by a hard link to the root would climb out.
  const base = JSON.parse(await readFile(recordOf(0), 'utf8')) as Entry[];
  await writeFile(recordOf(0), JSON.stringify([...base, { name: 'esc', type: 'link', mode: 0o777, uid: 0, gid: 0, mtime: 0, linkname: 'etc/keep-link' }]));
  // The top layer's file made to name a stored copy with the setuid bit.
  const top = JSON.parse(await readFile(recordOf(2), 'utf8')) as Entry[];
  const file = top.find((e) => e.stored !== undefined)!;
  const setuidName = file.stored!.replace(/-([0-7]+)-/, (_, mode: string) => `-${(parseInt(mode, 8) | 0o4000).toString(8)}-`);
  await copyFile(join(shared, file.stored!), join(shared, setuidName));
  await chmod(join(shared, setuidName), parseInt(/-([0-7]+)-/.exec(setuidName)![1], 8));
  file.stored = setuidName;
  await writeFile(recordOf(2), JSON.stringify(top));

  // The bad base record fails its replay, so the whole unpack reads the blobs (and the setuid copy is not used).
  const result = await unpack(await openImage(v1), join(dir, 'cache/again'), { sharedFilesDir: shared });
  assert.equal(result, { layers: 3, layersFromStore: 0, specialBitsStripped: 0, devicesSkipped: 0 });
  await rejects(() => lstat(join(dir, 'cache/again/esc')), /ENOENT/);
  await unpack(await openImage(v1), join(dir, 'plain'));
  assert.equal(await tree(join(dir, 'cache/again')), await tree(join(dir, 'plain')));

  // With the base record as it was, the base layer replays and the top layer (its record naming the setuid copy) does not.
  await writeFile(recordOf(0), JSON.stringify(base));
  await writeFile(recordOf(2), JSON.stringify(top));
  assert.equal((await unpack(await openImage(v1), join(dir, 'cache/third'), { sharedFilesDir: shared })).layersFromStore, 2);
  assert.equal(await tree(join(dir, 'cache/third')), await tree(join(dir, 'plain')));
});

test('a shared file that a process wrote into in place is not handed out again: the next trees get fresh copies', async () => {
  const dir = await tempDir();
  const [v1, v2] = await layouts(dir);
  const shared = join(dir, 'cache/files');
  await unpack(await openImage(v1), join(dir, 'cache/v1'), { sharedFilesDir: shared });
  // A model process writing into its own tree: the base layer's bin/run, shared with v2 through the store.
  await appendFile(join(dir, 'cache/v1/bin/run'), 'echo tampered\n');
  // v2 shares the base layer, but its record names the changed copy: that layer comes from its blob again.
  assert.equal(await unpack(await openImage(v2), join(dir, 'cache/v2'), { sharedFilesDir: shared }), { layers: 3, layersFromStore: 1, specialBitsStripped: 0, devicesSkipped: 0 });
  await unpack(await openImage(v2), join(dir, 'plain/v2'));
  assert.equal(await tree(join(dir, 'cache/v2')), await tree(join(dir, 'plain/v2')));
  assert.is(await readFile(join(dir, 'cache/v2/bin/run'), 'utf8'), '#!/bin/sh\necho run\n');
  // The fresh copy took the stored name: a third tree replays every layer, and gets the right bytes.
  assert.equal(await unpack(await openImage(v1), join(dir, 'cache/v1-again'), { sharedFilesDir: shared }), { layers: 3, layersFromStore: 3, specialBitsStripped: 0, devicesSkipped: 0 });
  await unpack(await openImage(v1), join(dir, 'plain/v1'));
  assert.equal(await tree(join(dir, 'cache/v1-again')), await tree(join(dir, 'plain/v1')));
  // A chmod is a change too.
  await chmod(join(dir, 'cache/v1-again/app/keep.js'), 0o777);
  const again = await unpack(await openImage(v1), join(dir, 'cache/v1-third'), { sharedFilesDir: shared });
  assert.ok(again.layersFromStore < 3, 'the layer holding the chmod-ed file is read from its blob');
  assert.is((await stat(join(dir, 'cache/v1-third/app/keep.js'))).mode & 0o777, (await stat(join(dir, 'plain/v1/app/keep.js'))).mode & 0o777);
});

test.run();
