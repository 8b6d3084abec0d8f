import { createHash, type Hash } from 'node:crypto';
import { Transform, type TransformCallback } from 'node:stream';

/** Only sha256 is accepted: it is what every writer uses, and it keeps blob paths unambiguous. */
const DIGEST_PATTERN = /^sha256:([0-9a-f]{64})$/;

export function isDigest(value: unknown): value is string {
  return typeof value === 'string' && DIGEST_PATTERN.test(value);
}

/** The hex part of a digest; throws on anything else, because digests become file names. */
export function digestHex(digest: string): string {
  const match = DIGEST_PATTERN.exec(digest);
  if (!match) throw new Error(`not a sha256 digest: ${JSON.stringify(digest)}`);
  return match[1];
}

export function sha256Digest(bytes: Uint8Array | string): string {
  return 'sha256:' + createHash('sha256').update(bytes).digest('hex');
}

/** A pass-through that hashes and counts every byte flowing through it. */
export class HashingStream extends Transform {
  readonly hash: Hash = createHash('sha256');
  bytes = 0;
  private result?: string;

  constructor(private readonly onChunk?: (bytesSoFar: number) => void) {
    super();
  }

  override _transform(chunk: Buffer, _encoding: BufferEncoding, callback: TransformCallback): void {
    this.hash.update(chunk);
    this.bytes += chunk.length;
    this.onChunk?.(this.bytes);
    callback(null, chunk);
  }

  /** Valid once the stream has ended. */
  digest(): string {
    this.result ??= 'sha256:' + this.hash.digest('hex');
    return this.result;
  }
}

/**
 * A pass-through that fails at its end when the bytes do not hash to `expected` (or are not `expectedSize`
 * long), so a consumer never accepts a corrupted blob as complete.
 */
export class VerifyingStream extends HashingStream {
  constructor(
    private readonly expected: string,
    private readonly what: string,
    private readonly expectedSize?: number,
  ) {
    super();
  }

  override _transform(chunk: Buffer, encoding: BufferEncoding, callback: TransformCallback): void {
    if (this.expectedSize !== undefined && this.bytes + chunk.length > this.expectedSize) {
      callback(new Error(`${this.what}: more than the ${this.expectedSize} bytes its descriptor declares`));
      return;
    }
    super._transform(chunk, encoding, callback);
  }

  override _flush(callback: TransformCallback): void {
    const actual = this.digest();
    if (actual !== this.expected) {
      callback(new Error(`${this.what}: content hashes to ${actual}, expected ${this.expected}`));
    } else if (this.expectedSize !== undefined && this.bytes !== this.expectedSize) {
      callback(new Error(`${this.what}: ${this.bytes} bytes, its descriptor declares ${this.expectedSize}`));
    } else {
      callback();
    }
  }
}

/**
 * Reads a blob stream to its end and returns whether it failed. Used to explain a parse error: a tar or gzip
 * error in a blob whose digest does not match is reported as the digest mismatch, which is what it is.
 */
export async function blobFailure(open: () => Promise<NodeJS.ReadableStream>): Promise<Error | undefined> {
  try {
    for await (const _ of await open());
    return undefined;
  } catch (error) {
    return error as Error;
  }
}
