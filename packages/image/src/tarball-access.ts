import { createReadStream } from 'node:fs';
import { posix } from 'node:path';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import tarStream from 'tar-stream';
import { JSON_DOCUMENT_LIMIT, readLimited, type BlobAccess } from './blob-access.ts';
import { digestHex } from './digest.ts';

interface TarMember {
  name: string;
  type: string;
  /** Where the member's data starts in the tarball. */
  offset: number;
  size: number;
  linkname?: string;
}

/**
 * Reads an image tarball without extracting it: one pass records where each member's bytes lie, and later
 * reads are byte ranges of the file. Blobs are found as `blobs/sha256/<hex>` (OCI layout in a tar) or, for
 * docker-archives, through the digest → member map the caller registers.
 */
export class TarballAccess implements BlobAccess {
  private readonly members = new Map<string, TarMember>();
  /** Blobs known by another member name (docker-archive layers such as `<id>/layer.tar`). */
  private readonly aliases = new Map<string, string>();

  private constructor(readonly file: string) {}

  static async index(file: string): Promise<TarballAccess> {
    const access = new TarballAccess(file);
    const extract = tarStream.extract();
    const reading = pipeline(createReadStream(file), extract);
    for await (const entry of extract) {
      const header = entry.header;
      const offset = (header as unknown as { byteOffset: number }).byteOffset;
      const name = normaliseMemberName(header.name);
      if (name !== '') {
        access.members.set(name, { name, type: header.type, offset, size: header.size ?? 0, linkname: header.linkname ?? undefined });
      }
      entry.resume(); // skip the data: only its position matters
    }
    await reading;
    return access;
  }

  has(name: string): boolean {
    return this.resolve(name) !== undefined;
  }

  /** Follows symlinks and hard links between members (docker save writes both). */
  private resolve(name: string, depth = 0): TarMember | undefined {
    const member = this.members.get(normaliseMemberName(name));
    if (!member || depth > 16) return undefined;
    if (member.type === 'file' || member.type === 'contiguous-file') return member;
    if (member.type === 'link' && member.linkname) return this.resolve(member.linkname, depth + 1);
    if (member.type === 'symlink' && member.linkname) {
      const target = posix.join(posix.dirname(member.name), member.linkname);
      return this.resolve(target, depth + 1);
    }
    return undefined;
  }

  memberSize(name: string): number | undefined {
    return this.resolve(name)?.size;
  }

  openMember(name: string): Readable {
    const member = this.resolve(name);
    if (!member) throw new Error(`${this.file} has no member ${name}`);
    if (member.size === 0) return Readable.from([]);
    return createReadStream(this.file, { start: member.offset, end: member.offset + member.size - 1 });
  }

  async readMember(name: string): Promise<Buffer | undefined> {
    if (!this.has(name)) return undefined;
    return readLimited(this.openMember(name), JSON_DOCUMENT_LIMIT, `${name} in ${this.file}`);
  }

  /** Lets `digest` be read from member `name` (a docker-archive blob stored under another name). */
  alias(digest: string, name: string): void {
    this.aliases.set(digest, name);
  }

  private memberFor(digest: string): string {
    return this.aliases.get(digest) ?? `blobs/sha256/${digestHex(digest)}`;
  }

  async size(digest: string): Promise<number | undefined> {
    return this.memberSize(this.memberFor(digest));
  }

  async open(digest: string): Promise<Readable> {
    const name = this.memberFor(digest);
    if (!this.has(name)) throw new Error(`blob ${digest} is missing (no member ${name})`);
    return this.openMember(name);
  }

  async close(): Promise<void> {}
}

/** `./blobs//x` and `blobs/x` name the same member. */
function normaliseMemberName(name: string): string {
  const normal = posix.normalize(name.replace(/^\/+/, '')).replace(/\/+$/, '');
  return normal === '.' ? '' : normal;
}
