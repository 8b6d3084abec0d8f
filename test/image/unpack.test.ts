import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { lstat, readdir, readFile, readlink, rm, copyFile, open, stat } from 'node:fs/promises';
import { join, relative } from 'node:path';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import {
  BlobStore, appendLayers, buildLayer, emptyImage, openImage, unpack, writeLayout, type Image, type Layer,
} from '@pyml/image';
import { cleanupTempDirs, rawLayer, rejects, sampleImage, tamperedLayout, tempDir, tool, type RawTarEntry } from './helpers.ts';

test.after.each(cleanupTempDirs);

/** Every regular file under `root`: relative path → content and permission bits. */
async function regularFiles(root: string): Promise<Record<string, { mode: string; content: string }>> {
  const out: Record<string, { mode: string; content: string }> = {};
  async function walk(dir: string): Promise<void> {
    for (const name of await readdir(dir)) {
      const path = join(dir, name);
      const info = await lstat(path);
      if (info.isDirectory()) await walk(path);
      else if (info.isFile()) {
        out[relative(root, path)] = { mode: (info.mode & 0o7777).toString(8), content: (await readFile(path)).toString('base64') };
      }
    }
  }
  await walk(root);
  return out;
}

test('unpack of a good image equals umoci\'s rootfs for regular files', async () => {
  const dir = await tempDir();
  const store = new BlobStore(join(dir, 'store'));
  const image = await sampleImage(store);
  const layout = join(dir, 'layout');
  await writeLayout(image, layout, { store, refName: 'v1' });
  await tool('umoci', ['unpack', '--rootless', '--image', `${layout}:v1`, join(dir, 'bundle')]);
  const source = await openImage(layout);
  const progress: number[] = [];
  await unpack(source, join(dir, 'rootfs'), { onProgress: (n) => progress.push(n) });

  const ours = await regularFiles(join(dir, 'rootfs'));
  assert.equal(ours, await regularFiles(join(dir, 'bundle', 'rootfs')));
  assert.equal(Object.keys(ours).sort(), ['app/cache/c', 'app/keep.js', 'bin/run', 'weights/w.bin']);
  assert.is(ours['bin/run'].mode, '755');
  assert.ok(progress.length > 0 && progress[progress.length - 1] > 200_000, 'progress counts uncompressed bytes');
  // Absolute symlinks are made relative, so the tree never points at the host's files.
  assert.is(await readlink(join(dir, 'rootfs/etc/keep-link')), '../app/keep.js');
  assert.is(await readFile(join(dir, 'rootfs/etc/keep-link'), 'utf8'), 'version 2\n');
  assert.equal((await readdir(dir)).sort(), ['bundle', 'layout', 'rootfs', 'store'], 'no temp dir left');
});

test('unpack keeps hard links, long and unicode names, drops setuid bits; reads a layout tarred by GNU tar', async () => {
  const dir = await tempDir();
  const store = new BlobStore(join(dir, 'store'));
  const long = '/opt/' + 'x'.repeat(120) + '/' + 'y'.repeat(130) + '/ünïcode.txt';
  const built = await buildLayer([{ path: long, content: 'long' }, { path: '/opt/link', linkTarget: 'z'.repeat(150) }], { store });
  const raw = await rawLayer(store, [
    { name: 'data/', type: 'directory', mode: 0o2750 },
    { name: 'data/a', content: 'A' },
    { name: 'data/b', type: 'link', linkname: 'data/a' },
    { name: './data/suid', content: 'S', mode: 0o4755 },
  ]);
  const image = appendLayers(emptyImage({ os: 'linux', architecture: 'amd64' }, '1970-01-01T00:00:00Z'), built, raw);
  await writeLayout(image, join(dir, 'layout'), { store });
  await promisify(execFile)('tar', ['-C', join(dir, 'layout'), '-cf', join(dir, 'gnu.tar'), '.']);
  const source = await openImage(join(dir, 'gnu.tar'));
  assert.is((await source.readFile(long))?.toString(), 'long');
  assert.is((await source.readFile('/data/b'))?.toString(), 'A', 'hard link followed');
  const result = await unpack(source, join(dir, 'rootfs'));
  const rootfs = join(dir, 'rootfs');
  assert.is(await readFile(join(rootfs, long), 'utf8'), 'long');
  assert.is((await stat(join(rootfs, 'data/a'))).ino, (await stat(join(rootfs, 'data/b'))).ino);
  assert.is((await stat(join(rootfs, 'data/suid'))).mode & 0o7777, 0o755, 'setuid dropped, the rest kept');
  assert.is((await stat(join(rootfs, 'data'))).mode & 0o7777, 0o750, 'setgid dropped from a directory, its mode applied');
  assert.is(result.specialBitsStripped, 2);
  assert.is(await readlink(join(rootfs, 'opt/link')), 'z'.repeat(150));
});

/** An image whose only layer is exactly these tar entries. */
async function maliciousImage(dir: string, entries: RawTarEntry[]): Promise<{ image: Image; layer: Layer; store: BlobStore }> {
  const store = new BlobStore(join(dir, 'store'));
  const layer = await rawLayer(store, entries);
  const image = appendLayers(emptyImage({ os: 'linux', architecture: 'amd64' }, '1970-01-01T00:00:00Z'), layer);
  return { image, layer, store };
}

const attacks: { name: string; entries: RawTarEntry[]; entry: string; reason: RegExp }[] = [
  { name: 'a ".." path', entries: [{ name: 'ok.txt', content: 'fine' }, { name: '../evil', content: 'x' }], entry: '../evil', reason: /"\.\." refused/ },
  { name: 'a deeper ".." path', entries: [{ name: 'a/', type: 'directory' }, { name: 'a/../../evil', content: 'x' }], entry: 'a/../../evil', reason: /"\.\." refused/ },
  { name: 'an absolute path', entries: [{ name: '/tmp/pyml-evil-absolute', content: 'x' }], entry: '/tmp/pyml-evil-absolute', reason: /absolute path refused/ },
  {
    name: 'a symlink out of the target', entries: [{ name: 'escape', type: 'symlink', linkname: '../../../../../tmp' }, { name: 'escape/pyml-evil', content: 'x' }],
    entry: 'escape', reason: /symlink to \.\.\/\.\.\/\.\.\/\.\.\/\.\.\/tmp refused: from \/ it leads outside the image root/,
  },
  {
    // Each link's text alone stays inside; resolved through the first, the second leads to the target's parent.
    name: 'a write through chained symlinks', entries: [
      { name: 'a/', type: 'directory' },
      { name: 'a/up', type: 'symlink', linkname: '..' },
      { name: 'a/out', type: 'symlink', linkname: 'up/..' },
      { name: 'a/out/pyml-evil', content: 'x' },
    ],
    entry: 'a/out', reason: /symlink to up\/\.\. refused: from \/a it leads outside the image root \(through \/a\/up\)/,
  },
  {
    name: 'a chain of symlinks that leads out', entries: [
      { name: 'a/', type: 'directory' },
      { name: 'a/up', type: 'symlink', linkname: '..' },
      { name: 'a/out', type: 'symlink', linkname: 'up/..' },
    ],
    entry: 'a/out', reason: /symlink to up\/\.\. refused/,
  },
  {
    // The finding 1: the copy's text climbs out from its new place; the directory's mode must not follow it.
    name: 'a hard link that copies a symlink to where it leads out', entries: [
      { name: 'victim/', type: 'directory', mode: 0o6777 },
      { name: 'a/b/c/d/', type: 'directory' },
      { name: 'a/b/c/d/l', type: 'symlink', linkname: '../../../../tmp/pyml-evil' },
      { name: 'victim', type: 'link', linkname: 'a/b/c/d/l' },
    ],
    entry: 'victim', reason: /hard link to symlink a\/b\/c\/d\/l \(-> \.\.\/\.\.\/\.\.\/\.\.\/tmp\/pyml-evil\) refused: at \/victim it would lead outside the image root/,
  },
  { name: 'a whiteout of ".."', entries: [{ name: '.wh..', content: '' }], entry: '.wh..', reason: /whiteout "\.wh\.\." refused: a whiteout must name one file of its own directory/ },
  { name: 'a whiteout of "."', entries: [{ name: 'a/', type: 'directory' }, { name: 'a/.wh..', content: '' }], entry: 'a/.wh..', reason: /whiteout "\.wh\.\." refused/ },
  { name: 'a whiteout of nothing', entries: [{ name: '.wh.', content: '' }], entry: '.wh.', reason: /whiteout "\.wh\." refused/ },
  {
    name: 'a hard link to a file outside', entries: [{ name: 'passwd', type: 'link', linkname: '../../../../../etc/passwd' }],
    entry: 'passwd', reason: /"\.\." refused/,
  },
  {
    name: 'a hard link through a symlink out', entries: [
      { name: 'a/', type: 'directory' }, { name: 'a/up', type: 'symlink', linkname: '..' }, { name: 'a/out', type: 'symlink', linkname: 'up/..' },
      { name: 'stolen', type: 'link', linkname: 'a/out/secret' },
    ],
    entry: 'a/out', reason: /symlink to up\/\.\. refused/,
  },
  {
    // The chain made in the other order: each link is fine when written, and the second leads out only once
    // the first exists; the check once all layers are down refuses it.
    name: 'a chain of symlinks made in the order that hides it', entries: [
      { name: 'a/', type: 'directory' },
      { name: 'a/out', type: 'symlink', linkname: 'up/..' },
      { name: 'a/up', type: 'symlink', linkname: '..' },
    ],
    entry: 'a/out', reason: /symlink \/a\/out -> up\/\.\. resolves outside the image root once all layers are applied/,
  },
];

for (const attack of attacks) {
  test(`unpack refuses ${attack.name}, names the layer and entry, and leaves nothing behind`, async () => {
    const dir = await tempDir();
    const work = join(dir, 'work');
    const { image, layer, store } = await maliciousImage(dir, attack.entries);
    await writeLayout(image, join(dir, 'layout'), { store });
    const source = await openImage(join(dir, 'layout'));
    const message = await rejects(() => unpack(source, join(work, 'rootfs')), attack.reason);
    assert.ok(message.includes(`layer ${layer.digest}`), message);
    assert.ok(message.includes(`entry ${JSON.stringify(attack.entry)}`), message);
    assert.equal(await readdir(work), [], 'no rootfs and no temp dir');
    await rejects(() => stat(join(dir, 'pyml-evil')), /ENOENT/);
    await rejects(() => stat('/tmp/pyml-evil'), /ENOENT/);
    await rejects(() => stat('/tmp/pyml-evil-absolute'), /ENOENT/);
    // verify reads the same rules: it names the same entry, under the layer, without writing anything.
    const entries = (await source.verify()).find((r) => r.what === 'layer 0 entries');
    assert.is(entries?.ok, false);
    assert.ok(entries?.unsafeEntries?.some((u) => u.entry === attack.entry && u.digest === layer.digest), JSON.stringify(entries));
  });
}

test('unpack keeps a symlink loop (it leads nowhere) and refuses a write through it', async () => {
  const dir = await tempDir();
  const loop: RawTarEntry[] = [{ name: 'a', type: 'symlink', linkname: 'b' }, { name: 'b', type: 'symlink', linkname: 'a' }];
  const { image, store } = await maliciousImage(dir, loop);
  await writeLayout(image, join(dir, 'layout'), { store });
  await unpack(await openImage(join(dir, 'layout')), join(dir, 'rootfs'));
  assert.is(await readlink(join(dir, 'rootfs/b')), 'a');
  const entries = (await (await openImage(join(dir, 'layout'))).verify()).find((r) => r.what === 'layer 0 entries');
  assert.is(entries?.ok, true, JSON.stringify(entries));

  const through = await maliciousImage(join(dir, 'through'), [...loop, { name: 'a/x', content: 'x' }]);
  await writeLayout(through.image, join(dir, 'through/layout'), { store: through.store });
  const source = await openImage(join(dir, 'through/layout'));
  const message = await rejects(() => unpack(source, join(dir, 'through/rootfs')), /refused to write through symlink \/a/);
  assert.ok(message.includes(`layer ${through.layer.digest}: entry "a/x"`), message);
});

test('unpack refuses a layer whose bytes do not match its digest, and leaves nothing', async () => {
  const dir = await tempDir();
  const { layout, image } = await tamperedLayout(dir);
  const source = await openImage(layout);
  await rejects(() => unpack(source, join(dir, 'rootfs')), new RegExp(`blob ${image.layers[1].digest}: content hashes to`));
  await rejects(() => stat(join(dir, 'rootfs')), /ENOENT/);
});

test('unpack refuses a non-empty target', async () => {
  const dir = await tempDir();
  const store = new BlobStore(join(dir, 'store'));
  const image = await sampleImage(store);
  await writeLayout(image, join(dir, 'layout'), { store });
  const source = await openImage(join(dir, 'layout'));
  await rejects(() => unpack(source, join(dir, 'store')), /exists and is not empty/);
});

test.run();
