import { Transform, type TransformCallback } from 'node:stream';
import { createGzip, constants as zlibConstants } from 'node:zlib';

/** Fixed, so the same tar always gzips to the same bytes. */
const GZIP_LEVEL = zlibConstants.Z_DEFAULT_COMPRESSION;
/** The gzip header's OS byte (offset 9): zlib writes the build platform's code; always say "Unix". */
const OS_OFFSET = 9;
const MTIME_OFFSET = 4;
const HEADER_SIZE = 10;
const OS_UNIX = 3;

/**
 * Node's gzip writes no file name and a zero mtime (header bytes 4-7), which is what reproducible layers
 * need; the only host-dependent header byte is the OS code, pinned here. The deflate stream itself depends on
 * zlib's version and level, both fixed by the Node release.
 */
export function createDeterministicGzip(): Transform {
  return createGzip({ level: GZIP_LEVEL });
}

/** Pins the OS byte of a gzip stream's header (and checks its mtime is zero). Sits right after the gzip stream. */
export class GzipHeaderPin extends Transform {
  private header: Buffer | undefined = Buffer.alloc(0);

  override _transform(chunk: Buffer, _encoding: BufferEncoding, callback: TransformCallback): void {
    if (this.header === undefined) return callback(null, chunk);
    // Hold bytes back until the fixed 10-byte header is complete, then patch it once.
    this.header = Buffer.concat([this.header, chunk]);
    if (this.header.length < HEADER_SIZE) return callback();
    const out = this.header;
    this.header = undefined;
    if (out.readUInt32LE(MTIME_OFFSET) !== 0) {
      return callback(new Error('gzip header carries a timestamp; layers would not be reproducible'));
    }
    out[OS_OFFSET] = OS_UNIX;
    callback(null, out);
  }

  override _flush(callback: TransformCallback): void {
    callback(null, this.header?.length ? this.header : undefined);
  }
}
