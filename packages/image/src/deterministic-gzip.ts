import { Transform, type TransformCallback } from 'node:stream';
import { createGzip, constants as zlibConstants } from 'node:zlib';

/** Fixed, so the same tar always gzips to the same bytes. */
const GZIP_LEVEL = zlibConstants.Z_DEFAULT_COMPRESSION;
/** The gzip header's OS byte (offset 9): zlib writes the build platform's code; always say "Unix". */
const OS_OFFSET = 9;
const OS_UNIX = 3;

/**
 * Node's gzip writes no file name and a zero mtime (header bytes 4-7), which is what reproducible layers
 * need; the only host-dependent header byte is the OS code, pinned here. The deflate stream itself depends on
 * zlib's version and level, both fixed by the Node release.
 */
export function createDeterministicGzip(): Transform {
  return createGzip({ level: GZIP_LEVEL });
}

/** Pins the OS byte of a gzip stream's header. Sits right after the gzip stream. */
export class GzipHeaderPin extends Transform {
  private seen = 0;

  override _transform(chunk: Buffer, _encoding: BufferEncoding, callback: TransformCallback): void {
    if (this.seen <= OS_OFFSET && this.seen + chunk.length > OS_OFFSET) {
      chunk = Buffer.from(chunk);
      const mtime = chunk.length >= 8 - this.seen && this.seen === 0 ? chunk.readUInt32LE(4) : 0;
      if (mtime !== 0) {
        callback(new Error('gzip header carries a timestamp; layers would not be reproducible'));
        return;
      }
      chunk[OS_OFFSET - this.seen] = OS_UNIX;
    }
    this.seen += chunk.length;
    callback(null, chunk);
  }
}
