import { execFile } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import tarStream from 'tar-stream';
import { createWriteStream } from 'node:fs';
import { pipeline } from 'node:stream/promises';

const run = promisify(execFile);

const cleanups: string[] = [];

/** A fresh temp directory, removed by `cleanupTempDirs`. */
export async function tempDir(prefix = 'pyml-image-test-'): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), prefix));
  cleanups.push(dir);
  return dir;
}

export async function cleanupTempDirs(): Promise<void> {
  for (const dir of cleanups.splice(0)) await rm(dir, { recursive: true, force: true });
}

/** Runs a real tool; a missing tool is a test failure with the reason, never a silent skip. */
export async function tool(name: 'skopeo' | 'umoci', args: string[]): Promise<string> {
  try {
    const { stdout } = await run(name, args, { maxBuffer: 64 * 1024 * 1024 });
    return stdout;
  } catch (error) {
    const e = error as NodeJS.ErrnoException & { stderr?: string };
    if (e.code === 'ENOENT') throw new Error(`${name} is required by this test but is not installed (not on PATH)`);
    throw new Error(`${name} ${args.join(' ')} failed: ${e.stderr || e.message}`);
  }
}

export interface RawTarEntry {
  name: string;
  type?: 'file' | 'directory' | 'symlink' | 'link';
  content?: string;
  linkname?: string;
  mode?: number;
}

/** Writes a tar by hand, exactly as given (no normalisation): for layers a careful writer would never make. */
export async function writeRawTar(file: string, entries: RawTarEntry[]): Promise<void> {
  const pack = tarStream.pack();
  const writing = pipeline(pack as unknown as NodeJS.ReadableStream, createWriteStream(file));
  for (const e of entries) {
    const type = e.type ?? 'file';
    const header = { name: e.name, type, mode: e.mode ?? (type === 'directory' ? 0o755 : 0o644), mtime: new Date(0), linkname: e.linkname };
    await new Promise<void>((resolve, reject) => {
      const done = (err?: Error | null) => (err ? reject(err) : resolve());
      if (type === 'file') pack.entry(header, e.content ?? '', done);
      else pack.entry(header, done);
    });
  }
  pack.finalize();
  await writing;
}

/** A hand-written, uncompressed layer put straight into the store. */
export async function rawLayer(store: import('@pyml/image').BlobStore, entries: RawTarEntry[]): Promise<import('@pyml/image').Layer> {
  const dir = await tempDir('pyml-raw-layer-');
  const file = join(dir, 'layer.tar');
  await writeRawTar(file, entries);
  const bytes = await (await import('node:fs/promises')).readFile(file);
  const digest = await store.putBytes(bytes);
  return (await import('@pyml/image')).storedLayer({ mediaType: 'application/vnd.oci.image.layer.v1.tar', digest, diffId: digest, size: bytes.length, annotations: {} }, store);
}

/** Every member of a tar buffer or file: header fields and content, in archive order. */
export async function listTar(source: NodeJS.ReadableStream): Promise<{ header: tarStream.Header; content: Buffer }[]> {
  const extract = tarStream.extract();
  const done = pipeline(source, extract as unknown as NodeJS.WritableStream);
  const out: { header: tarStream.Header; content: Buffer }[] = [];
  for await (const entry of extract) {
    const chunks: Buffer[] = [];
    for await (const chunk of entry) chunks.push(chunk as Buffer);
    out.push({ header: entry.header, content: Buffer.concat(chunks) });
  }
  await done;
  return out;
}

/** uvu has no async throws: awaits `fn` and checks it rejects with a message matching `pattern`. Returns the message. */
export async function rejects(fn: () => Promise<unknown>, pattern: RegExp): Promise<string> {
  try {
    await fn();
  } catch (error) {
    const message = (error as Error).message;
    if (!pattern.test(message)) throw new Error(`rejected with "${message}", which does not match ${pattern}`);
    return message;
  }
  throw new Error(`expected a rejection matching ${pattern}, but it resolved`);
}

/**
 * A three-layer image exercising what readers must honour: a gzip base, an uncompressed weights layer, and a top
 * layer that overwrites a file, whites one out and makes a directory opaque.
 */
export async function sampleImage(store: import('@pyml/image').BlobStore): Promise<import('@pyml/image').Image> {
  const img = await import('@pyml/image');
  const { randomBytes } = await import('node:crypto');
  const base = await img.buildLayer([
    { path: '/app/old.js', content: 'old\n' },
    { path: '/app/keep.js', content: 'version 1\n' },
    { path: '/app/cache/a', content: 'a' },
    { path: '/app/cache/b', content: 'b' },
    { path: '/bin/run', content: '#!/bin/sh\necho run\n', mode: 0o755 },
    { path: '/etc/keep-link', linkTarget: '/app/keep.js' },
  ], { store, compression: 'gzip', annotations: { 'dev.pyml.part': 'base' } });
  const weights = await img.buildLayer([{ path: '/weights/w.bin', content: randomBytes(200_000) }],
    { store, compression: 'auto', annotations: { 'dev.pyml.part': 'weights' } });
  const top = await img.buildLayer([
    { path: '/app/.wh.old.js', content: '' },
    { path: '/app/cache/.wh..wh..opq', content: '' },
    { path: '/app/cache/c', content: 'c' },
    { path: '/app/keep.js', content: 'version 2\n' },
  ], { store, compression: 'gzip', annotations: { 'dev.pyml.part': 'code' } });
  return sampleImageWith([base, weights, top]);
}

/** The sample image's platform, config and annotations over other layers (a few of its own, say). */
export async function sampleImageWith(layers: import('@pyml/image').Layer[]): Promise<import('@pyml/image').Image> {
  const img = await import('@pyml/image');
  let image = img.emptyImage({ os: 'linux', architecture: 'amd64' }, img.createdFromEpoch(0));
  image = img.appendLayers(image, ...layers);
  image = img.withConfig(image, { Entrypoint: ['/bin/run'], Env: ['PATH=/bin'], Labels: { model: 'sample' } });
  return img.withAnnotations(image, { 'org.opencontainers.image.title': 'sample' });
}

/** The sample image written to `<dir>/layout` with its weights blob changed after the fact (its digest no longer holds). */
export async function tamperedLayout(dir: string): Promise<{ layout: string; image: import('@pyml/image').Image }> {
  const img = await import('@pyml/image');
  const { copyFile, open, rm } = await import('node:fs/promises');
  const store = new img.BlobStore(join(dir, 'store'));
  const image = await sampleImage(store);
  const layout = join(dir, 'layout');
  await img.writeLayout(image, layout, { store });
  // The layout's blob is a hard link to the store's: replace it with a copy before writing into it.
  const blob = join(layout, 'blobs/sha256', image.layers[1].digest.slice(7));
  await rm(blob);
  await copyFile(store.path(image.layers[1].digest), blob);
  const handle = await open(blob, 'r+');
  await handle.write(Buffer.from('tampered'), 0, 8, 4096);
  await handle.close();
  return { layout, image };
}
