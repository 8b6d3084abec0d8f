import { once } from 'node:events';
import { createReadStream } from 'node:fs';
import tarStream from 'tar-stream';

export type TarHeader = Partial<tarStream.Header> & Pick<tarStream.Header, 'name'>;

/** Adds one entry whose body (if any) is in memory; resolves once tar-stream has taken it. */
export function addTarEntry(pack: tarStream.Pack, header: TarHeader, body?: Buffer): Promise<void> {
  return new Promise((resolve, reject) => {
    const done = (error?: Error | null) => (error ? reject(error) : resolve());
    if (body) pack.entry({ ...header, size: body.length }, body, done);
    else pack.entry(header, done);
  });
}

/**
 * Streams `header.size` bytes of a host file into the tar with backpressure, never holding it in memory.
 * Fails if the file no longer has that many bytes.
 */
export async function addTarFileEntry(pack: tarStream.Pack, header: TarHeader & { size: number }, file: string): Promise<void> {
  const source = header.size > 0 ? createReadStream(file, { start: 0, end: header.size - 1 }) : [];
  await addTarStreamEntry(pack, header, source, (written) => `${file} shrank while it was being written (${written} of ${header.size} bytes)`);
}

/** Streams an entry's body with backpressure; fails unless the source has exactly `header.size` bytes. */
export async function addTarStreamEntry(
  pack: tarStream.Pack, header: TarHeader & { size: number }, source: AsyncIterable<unknown> | Iterable<unknown>, wrongSize: (written: number) => string,
): Promise<void> {
  let sink!: ReturnType<tarStream.Pack['entry']>;
  const finished = new Promise<void>((ok, fail) => {
    sink = pack.entry(header, (error) => (error ? fail(error) : ok()));
  });
  let written = 0;
  for await (const chunk of source) {
    written += (chunk as Buffer).length;
    if (written > header.size) break;
    if (!sink.write(chunk as Buffer)) await once(sink as unknown as NodeJS.EventEmitter, 'drain');
  }
  if (written !== header.size) {
    const error = new Error(wrongSize(written));
    sink.destroy(error);
    throw error;
  }
  (sink as unknown as NodeJS.WritableStream).end();
  await finished;
}

/** tar-stream's pack is a streamx stream; its async iterator is the portable way into a Node pipeline. */
export async function* packChunks(pack: tarStream.Pack): AsyncGenerator<Buffer> {
  for await (const chunk of pack) yield chunk as Buffer;
}
