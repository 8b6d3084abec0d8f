import { createReadStream } from 'node:fs';
import type { Readable } from 'node:stream';
import type { BlobStore } from './blob-store.ts';
import type { Layer, LayerRecord } from './layer.ts';
import { uncompressedLayer } from './layer-stream.ts';

/** A layer whose blob is in a BlobStore (built here, or copied in from a base image): it opens its bytes there. */
export function storedLayer(record: LayerRecord, store: BlobStore): Layer {
  const openBlob = async (): Promise<Readable> => {
    // ensure: a held blob pruned since the build found it is put back first.
    if (!(await store.ensure(record.digest))) throw new Error(`layer ${record.digest} is not in the blob store ${store.dir}`);
    return createReadStream(store.path(record.digest));
  };
  return {
    ...record,
    openBlob,
    openTar: async () => uncompressedLayer(await openBlob(), record, record.diffId, `layer ${record.digest}`),
  };
}
