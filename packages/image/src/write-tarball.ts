import { mkdir, open, rename, rm } from 'node:fs/promises';
import { dirname } from 'node:path';
import { randomBytes } from 'node:crypto';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import tarStream from 'tar-stream';
import { canonicalJson } from './canonical-json.ts';
import { digestHex } from './digest.ts';
import type { Image } from './image.ts';
import { imageBlobs } from './image-blobs.ts';
import type { DockerArchiveManifestEntry } from './oci.ts';
import { addTarEntry, addTarStreamEntry, packChunks, type TarHeader } from './tar-writing.ts';
import { layoutMetadata } from './write-layout.ts';

export interface WriteTarballOptions {
  refName?: string;
  /** docker-archive tags, e.g. `name:version`; `docker load` names the image after them. */
  repoTags?: string[];
}

/**
 * Writes one tar that is both an OCI layout (for `skopeo ... oci-archive:`) and a docker-archive (its
 * `manifest.json` points at the same blobs, for `docker load` / `podman load`), to a temp file renamed into place.
 */
export async function writeTarball(image: Image, file: string, opts: WriteTarballOptions = {}): Promise<{ manifestDigest: string; configDigest: string }> {
  await mkdir(dirname(file), { recursive: true });
  const temp = `${file}.tmp-${randomBytes(6).toString('hex')}`;
  try {
    // Opened before the pipeline runs: a file that createWriteStream opened late could appear after a failure's rm.
    await pipeline(imageTarball(image, opts), (await open(temp, 'w')).createWriteStream());
    await rename(temp, file);
  } catch (error) {
    await rm(temp, { force: true });
    throw new Error(`writing image tarball ${file}: ${(error as Error).message}`);
  }
  return { manifestDigest: image.manifestDigest, configDigest: image.manifest.config.digest };
}

/** That tar as a stream (what an engine loads), each layer's bytes streamed from the layer: nothing is held. */
export function imageTarball(image: Image, opts: WriteTarballOptions = {}): Readable {
  const { ociLayout, index } = layoutMetadata(image, opts.refName);
  const dockerManifest: DockerArchiveManifestEntry[] = [{
    Config: blobPath(image.manifest.config.digest),
    RepoTags: opts.repoTags ?? [],
    Layers: image.layers.map((layer) => blobPath(layer.digest)),
  }];
  const pack = tarStream.pack();
  const adding = (async () => {
    await addEntry(pack, { name: 'oci-layout' }, ociLayout);
    await addEntry(pack, { name: 'index.json' }, index);
    await addEntry(pack, { name: 'manifest.json' }, Buffer.from(canonicalJson(dockerManifest)));
    await addEntry(pack, { name: 'blobs/', type: 'directory', mode: 0o755 });
    await addEntry(pack, { name: 'blobs/sha256/', type: 'directory', mode: 0o755 });
    for (const blob of imageBlobs(image)) {
      const name = blobPath(blob.digest);
      if (blob.bytes) await addEntry(pack, { name }, blob.bytes);
      else await addTarStreamEntry(pack, { ...FIXED, name, size: blob.size }, await blob.open(), (n) => `blob ${blob.digest} has ${n} bytes, not the ${blob.size} its manifest says`);
    }
    pack.finalize();
  })();
  adding.catch((error: Error) => pack.destroy(error));
  return Readable.from(packChunks(pack));
}

function blobPath(digest: string): string {
  return `blobs/sha256/${digestHex(digest)}`;
}

/** Every tarball entry is owned by root, dated 1970: the file is a container for blobs, not a filesystem. */
const FIXED = { mode: 0o644, uid: 0, gid: 0, uname: '', gname: '', mtime: new Date(0), type: 'file' } as const;

function addEntry(pack: tarStream.Pack, header: TarHeader, body?: Buffer): Promise<void> {
  return addTarEntry(pack, { ...FIXED, ...header }, body);
}
