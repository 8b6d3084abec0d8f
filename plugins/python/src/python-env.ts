/**
 * The Python environment layer: Debian's interpreter, its standard library and the Python packages a model needs
 * (python3-torch, python3-numpy and every python3-* package they depend on), copied from this machine's dpkg
 * database with the system libraries they load. The file list is computed once per set of package versions and
 * kept in the plugin's cache directory, and the layer's cache key is made of those versions, so a rebuild that
 * changes only model code or weights neither lists nor reads these hundreds of MB again.
 */
import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, realpathSync } from 'node:fs';
import { lstat, mkdir, open, readFile, readdir, readlink, realpath, rename, writeFile } from 'node:fs/promises';
import { dirname, join, posix } from 'node:path';
import { promisify } from 'node:util';
import type { DependencyEntry, DependencyLayer, LayerFile, Platform } from '@pyml/core/types';

const run = promisify(execFile);

/** Bump when the selection of files below changes: it is part of the cache key. */
const LAYOUT = 'python-env-5';
export const PYTHON_VERSION = '3.11';
export const DIST_PACKAGES = '/usr/lib/python3/dist-packages';
const STDLIB = `/usr/lib/python${PYTHON_VERSION}`;
const INTERPRETER = `/usr/bin/python${PYTHON_VERSION}`;
/** Stdlib parts a served model never uses; they only weigh the layer down. */
const STDLIB_SKIP = ['test/', 'idlelib/', 'tkinter/', 'turtledemo/', 'ensurepip/', 'lib2to3/tests/', 'distutils/tests/'].map((d) => `${STDLIB}/${d}`);

export interface DebianPackage { name: string; version: string; depends: string[] }

async function queryPackages(names: string[]): Promise<{ found: DebianPackage[]; missing: string[] }> {
  let stdout = '';
  let stderr = '';
  try {
    ({ stdout, stderr } = await run('dpkg-query', ['-W', '-f=${Package}\t${Version}\t${db:Status-Status}\t${Depends}, ${Pre-Depends}\n', ...names], { maxBuffer: 1 << 24 }));
  } catch (error) {
    // Exit 1 when some names are unknown (virtual packages such as python3-numpy-abi9): keep what was found.
    stdout = String((error as { stdout?: string }).stdout ?? '');
    stderr = String((error as { stderr?: string }).stderr ?? '');
    if (!stdout && !/no packages found/.test(stderr)) throw new Error(`dpkg-query failed: ${stderr.trim() || (error as Error).message}`);
  }
  const found: DebianPackage[] = [];
  for (const line of stdout.split('\n')) {
    if (!line) continue;
    const [name, version, status, deps] = line.split('\t');
    if (status !== 'installed') continue;
    const depends = (deps ?? '').split(',').map((d) => d.trim()).filter(Boolean)
      .map((alt) => alt.split('|').map((a) => a.trim().split(/[\s(:]/)[0]!));
    found.push({ name: name!, version: version!, depends: depends.map((alts) => alts.join('|')) });
  }
  const have = new Set(found.map((p) => p.name));
  return { found, missing: names.filter((n) => !have.has(n)) };
}

const isPythonPackage = (name: string) => /^(lib)?python3/.test(name);

/** The requested packages and every Python package they depend on, transitively (first installed alternative). */
export async function pythonPackageClosure(requested: string[]): Promise<DebianPackage[]> {
  const { found, missing } = await queryPackages(requested);
  if (missing.length) {
    throw new Error(`python: Debian package${missing.length > 1 ? 's' : ''} ${missing.join(', ')} ${missing.length > 1 ? 'are' : 'is'} not installed on this machine; install with apt-get install ${missing.join(' ')} (the image's Python environment is copied from the build machine)`);
  }
  const seen = new Map(found.map((p) => [p.name, p]));
  let frontier = found;
  while (frontier.length) {
    const wanted = new Set<string>();
    for (const p of frontier) {
      for (const alts of p.depends) {
        const names = alts.split('|').filter(isPythonPackage);
        if (names.length && !names.some((n) => seen.has(n))) names.forEach((n) => wanted.add(n));
      }
    }
    if (!wanted.size) break;
    const { found: next } = await queryPackages([...wanted]);
    frontier = [];
    for (const p of next) if (!seen.has(p.name)) { seen.set(p.name, p); frontier.push(p); }
  }
  return [...seen.values()].sort((a, b) => (a.name < b.name ? -1 : 1));
}

async function packageFiles(names: string[]): Promise<string[]> {
  const { stdout } = await run('dpkg-query', ['-L', ...names], { maxBuffer: 1 << 28 });
  return [...new Set(stdout.split('\n').filter((p) => p.startsWith('/')))].sort();
}

const wanted = (p: string) =>
  p === INTERPRETER || p.startsWith(`${DIST_PACKAGES}/`) || (p.startsWith(`${STDLIB}/`) && !STDLIB_SKIP.some((s) => p.startsWith(s)));

async function licenseOf(name: string): Promise<string | undefined> {
  try {
    const text = await readFile(`/usr/share/doc/${name}/copyright`, 'utf8');
    return /^License:\s*(\S.*)$/m.exec(text)?.[1]?.trim();
  } catch {
    return undefined;
  }
}

/**
 * Debian's byte-code caches are checked against the source's mtime, which a layer resets: Python would recompile
 * every module at each start (seconds for torch). Flagging them "unchecked hash-based" (PEP 552) keeps them valid;
 * the same header bytes stay in place, Python just stops comparing them. Only caches that are fresh on this
 * machine are carried. Returns the path of the patched copy, or undefined.
 */
async function patchedByteCode(source: string, outDir: string): Promise<string | undefined> {
  const base = posix.basename(source, '.py');
  const pyc = posix.join(dirname(source), '__pycache__', `${base}.cpython-${PYTHON_VERSION.replace('.', '')}.pyc`);
  let bytes: Buffer;
  try {
    bytes = await readFile(pyc);
  } catch {
    return undefined;
  }
  if (bytes.length < 16 || bytes.readUInt32LE(4) !== 0) return undefined;
  const s = await lstat(source);
  if (bytes.readUInt32LE(8) !== (Math.floor(s.mtimeMs / 1000) >>> 0) || bytes.readUInt32LE(12) !== (s.size >>> 0)) return undefined;
  bytes.writeUInt32LE(0b01, 4); // hash-based, check_source = 0
  const out = join(outDir, pyc);
  await mkdir(dirname(out), { recursive: true });
  await writeFile(out, bytes);
  return pyc;
}

/**
 * On merged-/usr machines ldd names /lib/<triplet>/x.so while Debian's links name /usr/lib/<triplet>/x.so, the
 * same file: one spelling (/usr/lib, which the loader searches too) keeps a 100 MB libtorch from shipping twice.
 */
const MERGED_USR = (() => { try { return realpathSync('/lib') === '/usr/lib'; } catch { return false; } })();
function canonicalLibPath(p: string): string {
  return MERGED_USR && p.startsWith('/lib/') ? `/usr${p}` : p;
}

/** System libraries (ldd closure) that ELF `files` load, as [path as loaded, real file]. */
async function systemLibraries(files: string[]): Promise<Map<string, string>> {
  const libs = new Map<string, string>();
  for (const file of files) {
    let stdout = '';
    try {
      ({ stdout } = await run('ldd', [file]));
    } catch (error) {
      const text = String((error as { stdout?: string }).stdout ?? '') + String((error as { stderr?: string }).stderr ?? '');
      if (/not a dynamic executable|statically linked/.test(text)) continue;
      throw new Error(`ldd ${file} failed: ${text.trim()}`);
    }
    for (const line of stdout.split('\n')) {
      const missing = /^\s*(\S+) => not found/.exec(line);
      if (missing) throw new Error(`python: ${file} needs ${missing[1]}, which is not installed on this machine`);
      const m = /=>\s+(\/\S+)\s+\(/.exec(line) ?? /^\s*(\/\S+)\s+\(/.exec(line);
      if (!m || !/^\/(usr\/)?lib(64)?\//.test(m[1]!)) continue;
      const loaded = canonicalLibPath(m[1]!);
      if (!libs.has(loaded)) libs.set(loaded, await realpath(m[1]!));
    }
  }
  return libs;
}

/** glibc and the C++ runtime come with every base (node needs them); a second copy would shadow the base's. */
const BASE_LIBRARIES = new Set(['libc.so.6', 'libm.so.6', 'libdl.so.2', 'libpthread.so.0', 'librt.so.1', 'ld-linux-x86-64.so.2', 'ld-linux-aarch64.so.1', 'libstdc++.so.6', 'libgcc_s.so.1']);

const isElf = (p: string) => p === INTERPRETER || /\.so(\.\d+)*$/.test(p);

interface CachedEnv { files: LayerFile[]; entries: DependencyEntry[]; bytes: number }

async function computeEnv(packages: DebianPackage[], pycDir: string, log: (m: string) => void): Promise<CachedEnv> {
  const paths = (await packageFiles(packages.map((p) => p.name))).filter(wanted);
  const files: LayerFile[] = [];
  const dirs = new Set<string>();
  const addDirs = (p: string) => { for (let d = posix.dirname(p); d !== '/'; d = posix.dirname(d)) dirs.add(d); };
  const elves: string[] = [];
  const linked = new Map<string, string>();
  let bytes = 0;
  let pycs = 0;
  for (const p of paths) {
    const s = await lstat(p).catch(() => undefined);
    if (!s) continue; // listed by dpkg but removed (e.g. diverted): nothing to copy
    if (s.isSymbolicLink()) {
      const target = await readlink(p);
      const real = await realpath(p).catch(() => undefined);
      if (!real) continue; // dangling on this machine (a library Debian left out): it would dangle in the image too
      files.push({ path: p, linkTarget: target });
      addDirs(p);
      // torch/lib/*.so point into /usr/lib/<triplet>/, outside the Python packages: carry the target along.
      const literal = posix.resolve(posix.dirname(p), target);
      if (!wanted(literal) && (await lstat(real)).isFile()) linked.set(literal, real);
      continue;
    }
    if (s.isDirectory()) { dirs.add(p); continue; }
    if (!s.isFile()) continue;
    const exec = (s.mode & 0o111) !== 0;
    files.push({ path: p, source: p, mode: exec ? 0o755 : 0o644 });
    bytes += s.size;
    addDirs(p);
    if (isElf(p)) elves.push(p);
    if (p.endsWith('.py')) {
      const pyc = await patchedByteCode(p, pycDir);
      if (pyc) { files.push({ path: pyc, source: join(pycDir, pyc), mode: 0o644 }); addDirs(pyc); pycs++; }
    }
  }
  for (const [path, real] of linked) {
    files.push({ path, source: real, mode: 0o755 });
    addDirs(path);
    bytes += (await lstat(real)).size;
    if (isElf(path)) elves.push(real);
  }
  log(`python: python environment: ${files.length} files (${pycs} byte-code caches), resolving shared libraries of ${elves.length} native files`);
  const present = new Set(files.map((f) => f.path));
  for (const [loaded, real] of await systemLibraries(elves)) {
    if (present.has(loaded) || linked.has(loaded) || BASE_LIBRARIES.has(posix.basename(loaded))) continue;
    files.push({ path: loaded, source: real, mode: 0o755 });
    addDirs(loaded);
    bytes += (await lstat(real)).size;
  }
  // /usr/bin/python3 too: users and tools expect it.
  files.push({ path: '/usr/bin/python3', linkTarget: `python${PYTHON_VERSION}` });
  for (const d of dirs) files.push({ path: d, directory: true, mode: 0o755 });
  files.sort((a, b) => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0));
  const entries: DependencyEntry[] = [];
  for (const p of packages) {
    const license = await licenseOf(p.name);
    entries.push({ name: p.name, version: p.version, ...(license ? { license } : {}) });
  }
  return { files, entries, bytes };
}

export interface PythonEnvOptions {
  /** Debian packages whose Python modules the model imports (default python3-torch, python3-numpy). */
  packages: string[];
  platform: Platform;
  cacheDir: string;
  log(message: string): void;
}

/** The layer: computed on first use for a set of package versions, then read back from the cache directory. */
export async function pythonEnvLayer(o: PythonEnvOptions): Promise<DependencyLayer> {
  if (o.platform.os !== 'linux' || o.platform.architecture !== hostArchitecture()) {
    throw new Error(`python: the Python environment is copied from this machine (linux/${hostArchitecture()}); it cannot target ${o.platform.os}/${o.platform.architecture}`);
  }
  if (!existsSync(INTERPRETER)) throw new Error(`python: ${INTERPRETER} is missing; install Debian's python3 (apt-get install python3-torch python3-numpy)`);
  const packages = await pythonPackageClosure(o.packages);
  const key = `${LAYOUT}/${o.platform.os}/${o.platform.architecture}/${packages.map((p) => `${p.name}=${p.version}`).join(',')}`;
  const hash = createHash('sha256').update(key).digest('hex').slice(0, 32);
  const dir = join(o.cacheDir, 'python-env');
  const listFile = join(dir, `${hash}.json`);
  let env: CachedEnv;
  try {
    env = JSON.parse(await readFile(listFile, 'utf8')) as CachedEnv;
  } catch {
    o.log(`python: listing the Python environment of ${packages.length} Debian packages (once per set of versions)`);
    env = await computeEnv(packages, join(dir, hash), o.log);
    await mkdir(dir, { recursive: true });
    const temp = `${listFile}.${process.pid}.tmp`;
    await writeFile(temp, JSON.stringify(env));
    await rename(temp, listFile);
  }
  // Debian packages (typed here, not in the cached list, so lists cached before types were recorded serve too).
  return { name: 'python', files: env.files, entries: env.entries.map((e) => ({ ...e, type: 'deb' as const })), cacheKey: `sha256:${createHash('sha256').update(key).digest('hex')}` };
}

function hostArchitecture(): Platform['architecture'] {
  return process.arch === 'arm64' ? 'arm64' : 'amd64';
}

/** The plugin's own `pyml` Python package, as a small layer at /opt/pyml/python/pyml. */
export async function pymlPythonLayer(packageDir: string, imageDir: string, version: string): Promise<DependencyLayer> {
  // Every module of the package, so a new one cannot be left out of the layer (or of its cache key).
  const names = (await readdir(packageDir)).filter((n) => n.endsWith('.py')).sort();
  const files: LayerFile[] = [{ path: imageDir, directory: true }, { path: `${imageDir}/pyml`, directory: true }];
  const hash = createHash('sha256');
  for (const name of names) {
    const content = await readFile(join(packageDir, name));
    hash.update(name).update('\0').update(content);
    files.push({ path: `${imageDir}/pyml/${name}`, content, mode: 0o644 });
  }
  return { name: 'pyml-python', files, entries: [{ name: 'pyml (python)', version, type: 'generic' }], cacheKey: `pyml-python/${hash.digest('hex')}` };
}

// Kept for tests: reading a handful of pyc headers.
export async function pycHeaderFlags(path: string): Promise<number> {
  const h = await open(path, 'r');
  try {
    const b = Buffer.alloc(8);
    await h.read(b, 0, 8, 0);
    return b.readUInt32LE(4);
  } finally {
    await h.close();
  }
}
