import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdir, readFile, realpath, rename, stat, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { promisify } from 'node:util';

const run = promisify(execFile);

/** dpkg rewrites it whenever a package is installed, removed or upgraded: the answers change only with it. */
const DPKG_STATUS = '/var/lib/dpkg/status';

/** The Debian package a file of this machine came from. */
export interface DebianOrigin {
  package: string;
  version: string;
  architecture: string;
  /** The first `License:` of its machine-readable copyright file, when it has one (Debian's short names). */
  license?: string;
}

/**
 * For each file (a path on this machine), the Debian package that installed it, as `dpkg -S` says, tried under
 * the path as loaded, its real path and their merged-/usr twins (/lib/x → /usr/lib/x). Files no package owns
 * (a node from a tarball) are absent from the answer. With `cacheDir`, kept by the stats of dpkg's status file,
 * so a rebuild runs no dpkg. Without dpkg (not Debian), every file is unowned.
 */
export async function debianOrigins(files: string[], cacheDir?: string): Promise<Map<string, DebianOrigin>> {
  return keptByDpkgStatus('files', files, cacheDir, askDpkg);
}

/**
 * dpkg's answer for these names, kept under `cacheDir` by the stats of dpkg's status file (which changes whenever
 * a package does); empty on a machine without dpkg.
 */
async function keptByDpkgStatus(kind: string, names: string[], cacheDir: string | undefined, ask: (unique: string[]) => Promise<Map<string, DebianOrigin>>): Promise<Map<string, DebianOrigin>> {
  const unique = [...new Set(names)].sort();
  if (unique.length === 0) return new Map();
  const status = await stat(DPKG_STATUS).then((s) => `${s.size}:${s.mtimeMs}:${s.ino}`, () => undefined);
  if (!status) return new Map();
  const entry = cacheDir && path.join(cacheDir, `${kind}-${createHash('sha256').update(`${status}\0${unique.join('\0')}`).digest('hex').slice(0, 32)}.json`);
  const cached = entry ? await readFile(entry, 'utf8').then((t) => JSON.parse(t) as Record<string, DebianOrigin>, () => undefined) : undefined;
  if (cached) return new Map(Object.entries(cached));
  const answer = await ask(unique);
  if (entry) {
    await mkdir(cacheDir!, { recursive: true });
    const temp = `${entry}.${process.pid}.tmp`;
    await writeFile(temp, JSON.stringify(Object.fromEntries(answer)));
    await rename(temp, entry);
  }
  return answer;
}

async function askDpkg(files: string[]): Promise<Map<string, DebianOrigin>> {
  const candidates = new Map<string, string[]>();
  for (const file of files) {
    const real = await realpath(file).catch(() => file);
    candidates.set(file, [...new Set([file, real].flatMap(usrMergeTwins))]);
  }
  const owners = await ownersOf([...new Set([...candidates.values()].flat())]);
  const packages = await packageDetails([...new Set(owners.values())]);
  const answer = new Map<string, DebianOrigin>();
  for (const [file, names] of candidates) {
    const owner = names.map((n) => owners.get(n)).find(Boolean);
    const details = owner ? packages.get(owner) : undefined;
    if (details) answer.set(file, details);
  }
  return answer;
}

/** /lib/x and /usr/lib/x name one file on a merged-/usr system, but dpkg knows it under one of them. */
function usrMergeTwins(file: string): string[] {
  const merged = ['/lib/', '/lib64/', '/bin/', '/sbin/'];
  const top = merged.find((m) => file.startsWith(m));
  if (top) return [file, `/usr${file}`];
  const under = merged.find((m) => file.startsWith(`/usr${m}`));
  return under ? [file, file.slice('/usr'.length)] : [file];
}

/** path → "package:arch", for the paths some package owns (dpkg -S exits 1 when any is unowned; the rest still count). */
async function ownersOf(paths: string[]): Promise<Map<string, string>> {
  const owners = new Map<string, string>();
  for (let i = 0; i < paths.length; i += 200) {
    const batch = paths.slice(i, i + 200);
    const stdout = await run('dpkg-query', ['-S', ...batch], { maxBuffer: 64 << 20 }).then((r) => r.stdout, (err: { stdout?: string; code?: unknown }) => {
      if (typeof err.stdout === 'string' && err.code === 1) return err.stdout;
      if (err.code === 'ENOENT') return ''; // no dpkg on PATH: nothing is known to come from a Debian package
      throw new Error(`dpkg-query -S failed: ${(err as Error).message}`);
    });
    for (const line of stdout.split('\n')) {
      // "libc6:amd64: /lib/x86_64-linux-gnu/libc.so.6"; a diversion line starts with "diversion by".
      const m = /^([^\s,:]+(?::[a-z0-9]+)?): (\/.*)$/.exec(line);
      if (m && batch.includes(m[2]!)) owners.set(m[2]!, m[1]!);
    }
  }
  return owners;
}

/**
 * The installed Debian packages of these names (architecture, version, DEP-5 licence), cached like debianOrigins:
 * what a plugin's Debian entries (name and version only) are completed with.
 */
export async function installedPackages(names: string[], cacheDir?: string): Promise<Map<string, DebianOrigin>> {
  return keptByDpkgStatus('packages', names, cacheDir, packageDetails);
}

async function packageDetails(names: string[]): Promise<Map<string, DebianOrigin>> {
  const details = new Map<string, DebianOrigin>();
  if (names.length === 0) return details;
  const stdout = await run('dpkg-query', ['-W', '-f=${binary:Package}\t${Package}\t${Version}\t${Architecture}\n', ...names], { maxBuffer: 16 << 20 })
    .then((r) => r.stdout, (err: { stdout?: string; code?: unknown }) => {
      if (typeof err.stdout === 'string' && err.code === 1) return err.stdout;
      if (err.code === 'ENOENT') return '';
      throw new Error(`dpkg-query -W failed: ${(err as Error).message}`);
    });
  for (const line of stdout.split('\n')) {
    const [qualified, name, version, architecture] = line.split('\t');
    if (!qualified || !name || !version || !architecture) continue;
    const license = await copyrightLicense(name);
    const origin = { package: name, version, architecture, ...(license ? { license } : {}) };
    details.set(qualified, origin);
    details.set(name, origin);
  }
  return details;
}

/** The first `License:` field of /usr/share/doc/PKG/copyright (machine-readable DEP-5 files only). */
export async function copyrightLicense(name: string): Promise<string | undefined> {
  const text = await readFile(`/usr/share/doc/${name}/copyright`, 'utf8').catch(() => '');
  if (!/^Format:/m.test(text)) return undefined;
  return /^License:\s*(\S.*)$/m.exec(text)?.[1]?.trim();
}
