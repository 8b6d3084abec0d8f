import { createHash } from 'node:crypto';
import tarStream from 'tar-stream';
import type { Layer } from './layer.ts';

/** One tar entry of a layer, as far as its bytes go: header fields and a hash of its content. */
export interface LayerEntrySummary {
  name: string;
  type: string;
  mode: number;
  uid: number;
  gid: number;
  mtime: number;
  size: number;
  linkname?: string;
  /** sha256 (hex) of the entry's content. */
  sha256: string;
}

/**
 * Every entry of a layer in tar order, each summarised (header and content hash), streamed: memory grows with the
 * number of entries, not their size. What `pyml build --reproducible-check` compares to name a differing file.
 */
export async function layerEntries(layer: Pick<Layer, 'openTar'>): Promise<LayerEntrySummary[]> {
  const tar = await layer.openTar();
  const extract = tarStream.extract();
  tar.on('error', (error) => extract.destroy(error));
  tar.pipe(extract);
  const entries: LayerEntrySummary[] = [];
  for await (const entry of extract) {
    const hash = createHash('sha256');
    for await (const chunk of entry) hash.update(chunk as Buffer);
    const h = entry.header;
    entries.push({
      name: h.name, type: h.type ?? 'file', mode: h.mode ?? 0, uid: h.uid ?? 0, gid: h.gid ?? 0, mtime: h.mtime ? h.mtime.getTime() / 1000 : 0,
      size: h.size ?? 0, ...(h.linkname ? { linkname: h.linkname } : {}), sha256: hash.digest('hex'),
    });
  }
  return entries;
}

/**
 * A regular file's bytes from the top-most of `layers` that holds it (as a container would see it, whiteouts
 * aside), or undefined; each layer is streamed, the file's bytes only are kept (up to `limit`).
 */
export async function fileInLayers(layers: Pick<Layer, 'openTar'>[], pathInImage: string, limit = 64 << 20): Promise<Buffer | undefined> {
  const wanted = pathInImage.replace(/^\/+/, '');
  for (const layer of [...layers].reverse()) {
    const extract = tarStream.extract();
    const tar = await layer.openTar();
    tar.on('error', (error) => extract.destroy(error));
    tar.pipe(extract);
    let found: Buffer | undefined;
    for await (const entry of extract) {
      const name = entry.header.name.replace(/^\.?\/+/, '');
      if (name === wanted && entry.header.type === 'file' && (entry.header.size ?? 0) <= limit) {
        const chunks: Buffer[] = [];
        for await (const chunk of entry) chunks.push(chunk as Buffer);
        found = Buffer.concat(chunks);
      } else {
        entry.resume();
      }
    }
    if (found) return found;
  }
  return undefined;
}
