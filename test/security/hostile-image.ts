import { createHash } from 'node:crypto';
import { link, mkdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import tarStream from 'tar-stream';

/**
 * Hand-made OCI layouts for the hostile-layer suite: a real, runnable image (iris) with layers appended whose
 * entries are written exactly as given (tar-stream, no normalisation), so the image is otherwise runnable and
 * only the hostile entries decide what happens.
 */

export interface HostileEntry {
  name: string;
  type?: 'file' | 'directory' | 'symlink' | 'link' | 'character-device';
  content?: string;
  linkname?: string;
  mode?: number;
}

export type HostileLayer =
  | { entries: HostileEntry[] }
  /** A gzip layer holding one file of `bytes` zeros, a few hundred KiB compressed. */
  | { bomb: { name: string; bytes: number } };

interface Blob {
  digest: string;
  bytes: Buffer;
}

function blobOf(bytes: Buffer): Blob {
  return { digest: `sha256:${createHash('sha256').update(bytes).digest('hex')}`, bytes };
}

export async function tarOf(entries: HostileEntry[]): Promise<Buffer> {
  const pack = tarStream.pack();
  const chunks: Buffer[] = [];
  const collected = (async () => {
    for await (const chunk of pack) chunks.push(chunk as Buffer);
  })();
  for (const e of entries) {
    const type = e.type ?? 'file';
    const header = {
      name: e.name, type, mode: e.mode ?? (type === 'directory' ? 0o755 : type === 'symlink' ? 0o777 : 0o644), mtime: new Date(0),
      linkname: e.linkname, uid: 0, gid: 0, ...(type === 'character-device' ? { devmajor: 1, devminor: 3 } : {}),
    };
    await new Promise<void>((resolve, reject) => {
      const done = (err?: Error | null) => (err ? reject(err) : resolve());
      if (type === 'file') pack.entry(header, e.content ?? '', done);
      else pack.entry(header, done);
    });
  }
  pack.finalize();
  await collected;
  return Buffer.concat(chunks);
}

/**
 * A gzip bomb: a tar holding one file of zeros, gzipped as many members of the same compressed megabyte (gunzip
 * reads concatenated members as one stream), so making it costs nothing; its diffId is the real one.
 */
async function bombLayer(name: string, bytes: number): Promise<{ blob: Blob; diffId: string }> {
  const mib = 1024 * 1024;
  if (bytes % mib !== 0) throw new Error('bomb size must be whole MiB');
  const end = await tarOf([]); // the end-of-archive blocks
  const headerBlock = await headerOnly(name, bytes);
  const zeros = Buffer.alloc(mib);
  const zerosGz = gzipSync(zeros, { level: 9 });
  const members = [gzipSync(headerBlock)];
  const diff = createHash('sha256').update(headerBlock);
  for (let i = 0; i < bytes / mib; i++) {
    members.push(zerosGz);
    diff.update(zeros);
  }
  members.push(gzipSync(end));
  diff.update(end);
  return { blob: blobOf(Buffer.concat(members)), diffId: `sha256:${diff.digest('hex')}` };
}

/** The 512-byte tar header of a regular file of `size` bytes. */
async function headerOnly(name: string, size: number): Promise<Buffer> {
  // tar-stream has no public header encoder: write a tiny tar of the same name and patch its size field.
  const sample = await tarOf([{ name, content: '' }]);
  const block = Buffer.from(sample.subarray(0, 512));
  block.write(size.toString(8).padStart(11, '0') + '\0', 124, 12, 'ascii');
  block.fill(' ', 148, 156);
  let sum = 0;
  for (const byte of block) sum += byte;
  block.write(sum.toString(8).padStart(6, '0') + '\0 ', 148, 8, 'ascii');
  return block;
}

/**
 * Writes `<out>` as an OCI layout: the image at `baseLayout` (one manifest) with `layers` appended on top. Base
 * blobs are hard-linked, not copied.
 */
export async function appendHostileLayers(baseLayout: string, out: string, layers: HostileLayer[]): Promise<{ layers: string[] }> {
  const blobs = join(out, 'blobs/sha256');
  await mkdir(blobs, { recursive: true });
  const index = JSON.parse(await readFile(join(baseLayout, 'index.json'), 'utf8'));
  const read = async (digest: string) => readFile(join(baseLayout, 'blobs/sha256', digest.slice(7)));
  const manifest = JSON.parse((await read(index.manifests[0].digest)).toString());
  const config = JSON.parse((await read(manifest.config.digest)).toString());
  for (const layer of manifest.layers) await link(join(baseLayout, 'blobs/sha256', layer.digest.slice(7)), join(blobs, layer.digest.slice(7)));
  const added: string[] = [];
  const put = async (blob: Blob) => writeFile(join(blobs, blob.digest.slice(7)), blob.bytes);
  for (const layer of layers) {
    let blob: Blob;
    let diffId: string;
    if ('bomb' in layer) {
      ({ blob, diffId } = await bombLayer(layer.bomb.name, layer.bomb.bytes));
    } else {
      const tar = await tarOf(layer.entries);
      diffId = blobOf(tar).digest;
      blob = blobOf(gzipSync(tar));
    }
    await put(blob);
    manifest.layers.push({ mediaType: 'application/vnd.oci.image.layer.v1.tar+gzip', digest: blob.digest, size: blob.bytes.length });
    config.rootfs.diff_ids.push(diffId);
    added.push(blob.digest);
  }
  const configBlob = blobOf(Buffer.from(JSON.stringify(config)));
  await put(configBlob);
  manifest.config = { ...manifest.config, digest: configBlob.digest, size: configBlob.bytes.length };
  const manifestBlob = blobOf(Buffer.from(JSON.stringify(manifest)));
  await put(manifestBlob);
  const descriptor = { mediaType: 'application/vnd.oci.image.manifest.v1+json', digest: manifestBlob.digest, size: manifestBlob.bytes.length };
  await writeFile(join(out, 'index.json'), JSON.stringify({ schemaVersion: 2, manifests: [descriptor] }));
  await writeFile(join(out, 'oci-layout'), JSON.stringify({ imageLayoutVersion: '1.0.0' }));
  return { layers: added };
}
