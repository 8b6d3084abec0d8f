import { randomBytes } from 'node:crypto';
import { mkdir, readFile, rename, writeFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { pymlCacheDir } from '@pyml/image';

type Memo = Record<string, Record<string, string[]>>;

const REPOS_PER_BLOB = 8;

/**
 * Which repositories of a registry this machine has pushed a blob to, so a push to another repository of the
 * same registry can mount the blob instead of uploading it again. A hint only: a stale entry costs one
 * refused mount, after which the blob is uploaded.
 */
export class KnownBlobs {
  private memo?: Memo;
  readonly file: string;

  constructor(cacheDir?: string) {
    this.file = join(pymlCacheDir(cacheDir), 'registry-blobs.json');
  }

  private async load(): Promise<Memo> {
    if (this.memo) return this.memo;
    try {
      const parsed = JSON.parse(await readFile(this.file, 'utf8')) as unknown;
      this.memo = parsed && typeof parsed === 'object' ? (parsed as Memo) : {};
    } catch {
      this.memo = {}; // absent or torn: start over, it is only a hint
    }
    return this.memo;
  }

  async repositoriesWith(registry: string, digest: string): Promise<string[]> {
    const repos = (await this.load())[registry]?.[digest];
    return Array.isArray(repos) ? repos.filter((r) => typeof r === 'string') : [];
  }

  async remember(registry: string, repository: string, digests: string[]): Promise<void> {
    const memo = await this.load();
    const blobs = (memo[registry] ??= {});
    for (const digest of digests) {
      const repos = (blobs[digest] ?? []).filter((r) => r !== repository);
      blobs[digest] = [repository, ...repos].slice(0, REPOS_PER_BLOB);
    }
    await mkdir(dirname(this.file), { recursive: true });
    const temp = `${this.file}.${process.pid}-${randomBytes(4).toString('hex')}`;
    await writeFile(temp, JSON.stringify(memo));
    await rename(temp, this.file);
  }
}
