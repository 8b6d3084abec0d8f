import { Transform, type TransformCallback } from 'node:stream';

/**
 * Counts a layer's uncompressed bytes as they pass. The count may refuse them (a size limit throws), which fails
 * the stream with its error; `onRefused` hears of it first (unpack stops decompressing there, verify notes it).
 */
export class ByteCounter extends Transform {
  constructor(private readonly count: (n: number) => void, private readonly onRefused?: (error: Error) => void) {
    super();
  }

  override _transform(chunk: Buffer, _encoding: BufferEncoding, callback: TransformCallback): void {
    try {
      this.count(chunk.length);
    } catch (error) {
      this.onRefused?.(error as Error);
      callback(error as Error);
      return;
    }
    callback(null, chunk);
  }
}
