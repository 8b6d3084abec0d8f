import { open, type FileHandle } from 'node:fs/promises';

/**
 * A minimal protobuf wire-format reader over a file on disk.
 *
 * Why not protobufjs alone: `Type.decode` needs the whole message in one buffer, and an ONNX file is one
 * ModelProto whose initializers can hold gigabytes. Walking the wire format ourselves lets the reader descend
 * into ModelProto.graph, decode only the small sub-messages (inputs, outputs, opsets) with protobufjs, and skip
 * weight bytes by moving a file offset: they are never read, let alone held. Memory stays at one read buffer.
 */
export const WireType = { VARINT: 0, I64: 1, LEN: 2, SGROUP: 3, EGROUP: 4, I32: 5 } as const;

export interface FieldKey {
  field: number;
  wireType: number;
  /** File offset where the key starts (for error messages). */
  offset: number;
}

/** A malformed or truncated wire-format stream; `offset` is the byte where it went wrong. */
export class WireFormatError extends Error {
  constructor(message: string, readonly offset: number) {
    super(`${message} at byte ${offset}`);
    this.name = 'WireFormatError';
  }
}

const CHUNK = 64 * 1024;

export class FileWireReader {
  /** Current absolute file offset. */
  position = 0;
  private buffer = Buffer.alloc(CHUNK);
  private bufferStart = 0;
  private bufferEnd = 0;

  private constructor(private readonly handle: FileHandle, readonly size: number) {}

  static async open(path: string): Promise<FileWireReader> {
    const handle = await open(path, 'r');
    try {
      const { size } = await handle.stat();
      return new FileWireReader(handle, size);
    } catch (error) {
      await handle.close();
      throw error;
    }
  }

  async close(): Promise<void> {
    await this.handle.close();
  }

  private async byte(): Promise<number> {
    if (this.position < this.bufferStart || this.position >= this.bufferEnd) {
      if (this.position >= this.size) throw new WireFormatError('truncated field (file ends)', this.position);
      const { bytesRead } = await this.handle.read(this.buffer, 0, CHUNK, this.position);
      this.bufferStart = this.position;
      this.bufferEnd = this.position + bytesRead;
      if (bytesRead === 0) throw new WireFormatError('truncated field (file ends)', this.position);
    }
    return this.buffer[this.position++ - this.bufferStart];
  }

  /** Reads a varint as a JS number; values beyond 2^53 are refused (no length or tag is that big). */
  async varint(): Promise<number> {
    const start = this.position;
    let result = 0;
    let scale = 1;
    for (let i = 0; i < 10; i++) {
      const b = await this.byte();
      result += (b & 0x7f) * scale;
      if ((b & 0x80) === 0) {
        if (result > Number.MAX_SAFE_INTEGER) throw new WireFormatError('varint too large', start);
        return result;
      }
      scale *= 128;
    }
    throw new WireFormatError('malformed varint', start);
  }

  /** Reads a field key, checking the wire type is a valid one. */
  async key(): Promise<FieldKey> {
    const offset = this.position;
    const raw = await this.varint();
    const field = Math.floor(raw / 8);
    const wireType = raw % 8;
    if (field === 0 || wireType > 5) throw new WireFormatError(`invalid field key 0x${raw.toString(16)}`, offset);
    return { field, wireType, offset };
  }

  /** Reads the length prefix of a LEN field and checks its body fits in `end` (the enclosing message's end). */
  async length(end: number): Promise<number> {
    const offset = this.position;
    const n = await this.varint();
    if (this.position + n > end) {
      const what = end === this.size ? `file ends at ${this.size}` : `enclosing message ends at ${end}`;
      throw new WireFormatError(`truncated field: needs ${n} bytes but ${what}`, offset);
    }
    return n;
  }

  /** Reads exactly `n` bytes into a fresh buffer. Only for small sub-messages: callers bound `n`. */
  async bytes(n: number): Promise<Uint8Array> {
    if (this.position + n > this.size) throw new WireFormatError(`truncated field: needs ${n} bytes but file ends at ${this.size}`, this.position);
    const out = Buffer.alloc(n);
    let done = 0;
    // Serve what is already buffered, then read the rest straight into the output.
    if (this.position >= this.bufferStart && this.position < this.bufferEnd) {
      done = Math.min(n, this.bufferEnd - this.position);
      this.buffer.copy(out, 0, this.position - this.bufferStart, this.position - this.bufferStart + done);
    }
    while (done < n) {
      const { bytesRead } = await this.handle.read(out, done, n - done, this.position + done);
      if (bytesRead === 0) throw new WireFormatError('truncated field (file ends)', this.position + done);
      done += bytesRead;
    }
    this.position += n;
    return out;
  }

  /**
   * The next `n` bytes, as a view into the read buffer when they fit in it (no copy): valid only until the next
   * read, so callers parse it synchronously. For many small messages (graph nodes) this avoids one await per byte.
   */
  async view(n: number): Promise<Uint8Array> {
    if (n > CHUNK) return this.bytes(n);
    if (this.position < this.bufferStart || this.position + n > this.bufferEnd) {
      if (this.position + n > this.size) throw new WireFormatError(`truncated field: needs ${n} bytes but file ends at ${this.size}`, this.position);
      const { bytesRead } = await this.handle.read(this.buffer, 0, CHUNK, this.position);
      this.bufferStart = this.position;
      this.bufferEnd = this.position + bytesRead;
      if (bytesRead < n) throw new WireFormatError('truncated field (file ends)', this.position + bytesRead);
    }
    const start = this.position - this.bufferStart;
    this.position += n;
    return this.buffer.subarray(start, start + n);
  }

  /** Moves past `n` bytes without reading them. */
  skip(n: number, end = this.size): void {
    if (this.position + n > end) throw new WireFormatError(`truncated field: needs ${n} bytes but ${end === this.size ? `file ends at ${this.size}` : `enclosing message ends at ${end}`}`, this.position);
    this.position += n;
  }

  /** Skips the value of a field whose key was just read. */
  async skipValue(key: FieldKey, end: number): Promise<void> {
    switch (key.wireType) {
      case WireType.VARINT: await this.varint(); break;
      case WireType.I64: this.skip(8, end); break;
      case WireType.I32: this.skip(4, end); break;
      case WireType.LEN: this.skip(await this.length(end), end); break;
      default: throw new WireFormatError(`unsupported wire type ${key.wireType} (groups) in field ${key.field}`, key.offset);
    }
    if (this.position > end) throw new WireFormatError(`field ${key.field} overruns its message`, key.offset);
  }
}

/** The synchronous twin of FileWireReader for a message already in memory, with the same bounds checks. */
export class SliceWireReader {
  pos = 0;
  constructor(private readonly bytes: Uint8Array, private readonly baseOffset: number) {}

  get done(): boolean { return this.pos >= this.bytes.length; }

  private fail(message: string, at = this.pos): never {
    throw new WireFormatError(message, this.baseOffset + at);
  }

  varint(): number {
    const start = this.pos;
    let result = 0;
    let scale = 1;
    for (let i = 0; i < 10; i++) {
      if (this.pos >= this.bytes.length) this.fail('truncated varint', start);
      const b = this.bytes[this.pos++];
      result += (b & 0x7f) * scale;
      if ((b & 0x80) === 0) return result;
      scale *= 128;
    }
    return this.fail('malformed varint', start);
  }

  key(): FieldKey {
    const offset = this.baseOffset + this.pos;
    const raw = this.varint();
    const field = Math.floor(raw / 8), wireType = raw % 8;
    if (field === 0 || wireType > 5) this.fail(`invalid field key 0x${raw.toString(16)}`, offset - this.baseOffset);
    return { field, wireType, offset };
  }

  private take(n: number, at: number): Uint8Array {
    if (this.pos + n > this.bytes.length) this.fail(`truncated field: needs ${n} bytes but its message ends at ${this.baseOffset + this.bytes.length}`, at);
    const out = this.bytes.subarray(this.pos, this.pos + n);
    this.pos += n;
    return out;
  }

  /** The body of a length-delimited field (a view, no copy). */
  lengthDelimited(): Uint8Array {
    const at = this.pos;
    return this.take(this.varint(), at);
  }

  string(): string {
    const at = this.pos;
    return Buffer.from(this.take(this.varint(), at)).toString('utf8');
  }

  skipValue(key: FieldKey): void {
    const at = this.pos;
    switch (key.wireType) {
      case WireType.VARINT: this.varint(); break;
      case WireType.I64: this.take(8, at); break;
      case WireType.I32: this.take(4, at); break;
      case WireType.LEN: this.take(this.varint(), at); break;
      default: this.fail(`unsupported wire type ${key.wireType} (groups) in field ${key.field}`, key.offset - this.baseOffset);
    }
  }
}
