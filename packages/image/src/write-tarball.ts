import { mkdir, open, rename, rm, stat } from 'node:fs/promises';
import { dirname } from 'node:path';
import { randomBytes } from 'node:crypto';
import { pipeline } from 'node:stream/promises';
import tarStream from 'tar-stream';
import type { BlobStore } from './blob-store.ts';
import { canonicalJson } from './canonical-json.ts';
import { digestHex } from './digest.ts';
import type { Image } from './image.ts';
import type { DockerArchiveManifestEntry } from './oci.ts';
import { addTarEntry, addTarFileEntry, packChunks, type TarHeader } from './tar-writing.ts';
import { layoutMetadata, prepareBlobs } from './write-layout.ts';

export interface WriteTarballOptions {
  store: BlobStore;
  refName?: string;
  /** docker-archive tags, e.g. `name:version`; `docker load` names the image after them. */
  repoTags?: string[];
}

/**
 * Writes one tar that is both an OCI layout (for `skopeo ... oci-archive:`) and a docker-archive (its
 * `manifest.json` points at the same blobs, for `docker load` / `podman load`). Streamed from the store to a
 * temp file that is renamed into place.
 */
export async function writeTarball(image: Image, file: string, opts: WriteTarballOptions): Promise<{ manifestDigest: string; configDigest: string }> {
  const { docs, blobs } = await prepareBlobs(image, opts.store);
  const { ociLayout, index } = layoutMetadata(image, docs, opts.refName);
  const dockerManifest: DockerArchiveManifestEntry[] = [{
    Config: blobPath(docs.configDigest),
    RepoTags: opts.repoTags ?? [],
    Layers: image.layers.map((layer) => blobPath(layer.digest)),
  }];
  await mkdir(dirname(file), { recursive: true });
  const temp = `${file}.tmp-${randomBytes(6).toString('hex')}`;
  const pack = tarStream.pack();
  // Opened before the pipeline runs: a file that createWriteStream opened late could appear after a failure's rm.
  const sink = (await open(temp, 'w')).createWriteStream();
  try {
    await Promise.all([
      (async () => {
        await addEntry(pack, { name: 'oci-layout' }, ociLayout);
        await addEntry(pack, { name: 'index.json' }, index);
        await addEntry(pack, { name: 'manifest.json' }, Buffer.from(canonicalJson(dockerManifest)));
        await addEntry(pack, { name: 'blobs/', type: 'directory', mode: 0o755 });
        await addEntry(pack, { name: 'blobs/sha256/', type: 'directory', mode: 0o755 });
        for (const digest of blobs) {
          if (!(await opts.store.ensure(digest))) throw new Error(`blob ${digest} is not in the blob store ${opts.store.dir}`);
          const source = opts.store.path(digest);
          await addTarFileEntry(pack, { ...FIXED, name: blobPath(digest), size: (await stat(source)).size }, source);
        }
        pack.finalize();
      })(),
      pipeline(packChunks(pack), sink),
    ]);
    await rename(temp, file);
  } catch (error) {
    pack.destroy(error as Error);
    await rm(temp, { force: true });
    throw new Error(`writing image tarball ${file}: ${(error as Error).message}`);
  }
  return { manifestDigest: docs.manifestDigest, configDigest: docs.configDigest };
}

function blobPath(digest: string): string {
  return `blobs/sha256/${digestHex(digest)}`;
}

/** Every tarball entry is owned by root, dated 1970: the file is a container for blobs, not a filesystem. */
const FIXED = { mode: 0o644, uid: 0, gid: 0, uname: '', gname: '', mtime: new Date(0), type: 'file' } as const;

function addEntry(pack: tarStream.Pack, header: TarHeader, body?: Buffer): Promise<void> {
  return addTarEntry(pack, { ...FIXED, ...header }, body);
}
