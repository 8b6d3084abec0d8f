import { createHash } from 'node:crypto';
import { mkdir, readFile, rename, stat, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { fileInLayers } from '@pyml/image';
import { ADAPTERS_DIR, ENTRYPOINT_PATH, MODEL_DIR, WEIGHTS_DIR, type Component } from '@pyml/image/pyml-format';
import type { DependencyLayer } from '../types.ts';
import type { BaseImage } from './base-image.ts';
import type { BundledPackage } from './bundled-packages.ts';
import { debianOrigins, installedPackages, type DebianOrigin } from './debian-origins.ts';
import { fileSha256 } from './file-digests.ts';
import { isNativeFile } from './shared-libraries.ts';

/** What the components are made from: the base, the deps layers, the weights files and the bundles' packages. */
export interface ComponentInputs {
  base: BaseImage;
  depLayers: DependencyLayer[];
  weightFiles: { path: string; name: string; size: number; format?: string }[];
  modelPackages: BundledPackage[];
  runtimePackages: BundledPackage[];
  adapters: { name: string; packages: BundledPackage[] }[];
  /** Where dpkg's and sha256's answers are kept between builds. */
  cacheDir: string;
}

/** System directories whose files a Debian package may own. */
const SYSTEM_DIRS = ['/lib/', '/lib64/', '/usr/lib/', '/usr/lib64/', '/usr/bin/', '/usr/local/'];

/**
 * Everything the image carries, part by part: the base's node and each shared library (with its Debian package),
 * each deps layer's packages (the plugins' entries, and the Debian packages or bare files of the system libraries
 * added to them), the weights files with their sha256, and the npm packages bundled into the model code, the
 * runtime and the adapters. Deterministic: the same inputs give the same list in the same order.
 */
export async function imageComponents(inputs: ComponentInputs): Promise<Component[]> {
  const dpkgCache = path.join(inputs.cacheDir, 'dpkg');
  const digestCache = path.join(inputs.cacheDir, 'sha256');
  return [
    ...(await baseComponents(inputs.base, dpkgCache, digestCache)),
    ...(await Promise.all(inputs.depLayers.map((layer) => depsComponents(layer, dpkgCache, digestCache)))).flat(),
    ...(await Promise.all(inputs.weightFiles.map(async (w): Promise<Component> => ({
      part: 'weights', layer: 'weights', type: 'weights', name: w.name, size: w.size, sha256: await fileSha256(w.path, digestCache),
      ...(w.format ? { format: w.format } : {}), paths: [`${WEIGHTS_DIR}/${w.name}`],
    })))),
    ...npmComponents('model', 'model', inputs.modelPackages, `${MODEL_DIR}/model.mjs`),
    ...npmComponents('entrypoint', 'entrypoint', inputs.runtimePackages, ENTRYPOINT_PATH),
    ...inputs.adapters.flatMap((a) => npmComponents('entrypoint', 'entrypoint', a.packages, `${ADAPTERS_DIR}/${a.name}.mjs`)),
  ];
}

function npmComponents(part: string, layer: string, packages: BundledPackage[], bundle: string): Component[] {
  return packages.map((p) => ({ part, layer, type: 'npm', name: p.name, version: p.version, ...(p.license ? { license: p.license } : {}), ...(p.integrity ? { integrity: p.integrity } : {}), paths: [bundle] }));
}

/** node and each library, hashed; the Debian packages they came from. A base pulled from elsewhere: its node only. */
async function baseComponents(base: BaseImage, dpkgCache: string, digestCache: string): Promise<Component[]> {
  const layer = base.layers.length > 1 ? 'base-0' : 'base';
  const node: Component = { part: 'base', layer, type: 'generic', name: 'node', version: base.nodeVersion.replace(/^v/, ''), license: 'MIT', paths: [base.nodePath] };
  if (!base.hostFiles) return [node, ...(await importedBasePackages(base, layer, dpkgCache))];
  // A base made for another architecture says where its files came from; this machine's files are asked of dpkg.
  const origins = base.fileOrigins
    ? new Map(base.hostFiles.flatMap((f) => (base.fileOrigins![f.path] ? [[f.source, base.fileOrigins![f.path]!] as const] : [])))
    : await debianOrigins(base.hostFiles.map((f) => f.source), dpkgCache);
  const files: Component[] = [];
  for (const f of base.hostFiles) {
    const about = await hashed(f.source, digestCache);
    const origin = origins.get(f.source);
    const debian = origin ? { debian: { package: origin.package, version: origin.version, architecture: origin.architecture } } : {};
    if (f.path === base.nodePath) Object.assign(node, about, debian, base.nodePackage?.integrity ? { integrity: base.nodePackage.integrity } : {});
    else files.push({ part: 'base', layer, type: 'file', name: path.posix.basename(f.path), ...about, paths: [f.path], ...debian });
  }
  return [node, ...files, ...debPackages('base', layer, base.hostFiles.map((f) => ({ path: f.path, origin: origins.get(f.source) })))];
}

async function hashed(file: string, digestCache: string): Promise<{ sha256: string; size: number }> {
  const [sha256, s] = await Promise.all([fileSha256(file, digestCache), stat(file)]);
  return { sha256, size: s.size };
}

/** One deb component per package among `files`' origins, listing the image paths it accounts for. */
function debPackages(part: string, layer: string, files: { path: string; origin?: DebianOrigin }[], plugin?: string): Component[] {
  const byPackage = new Map<string, { origin: DebianOrigin; paths: string[] }>();
  for (const { path: p, origin } of files) {
    if (!origin) continue;
    const entry = byPackage.get(origin.package) ?? { origin, paths: [] };
    entry.paths.push(p);
    byPackage.set(origin.package, entry);
  }
  return [...byPackage.values()].sort((a, b) => (a.origin.package < b.origin.package ? -1 : 1)).map(({ origin, paths }) => ({
    part, layer, type: 'deb', name: origin.package, version: origin.version, ...(origin.license ? { license: origin.license } : {}),
    debian: { package: origin.package, version: origin.version, architecture: origin.architecture }, paths: paths.sort(), ...(plugin ? { plugin } : {}),
  }));
}

/**
 * A deps layer: its plugin's entries, then the system libraries it carries from this machine (its native files'
 * closure, or a Python environment's) that no entry accounts for: their Debian packages, or the bare files hashed.
 */
async function depsComponents(layer: DependencyLayer, dpkgCache: string, digestCache: string): Promise<Component[]> {
  // A plugin's Debian entries name package and version; dpkg adds the architecture (for the purl) and reads the
  // licence from DEP-5 copyright files only (a free-text copyright file has no licence field to take).
  const installed = await installedPackages(layer.entries.filter((e) => e.type === 'deb').map((e) => e.name), dpkgCache);
  const entries: Component[] = layer.entries.map((e) => {
    const dpkg = e.type === 'deb' ? installed.get(e.name) : undefined;
    const known = dpkg && dpkg.version === e.version ? dpkg : undefined;
    const license = known ? known.license : e.license;
    return {
      part: 'deps', layer: layer.name, type: e.type ?? 'generic', name: e.name, version: e.version,
      ...(license ? { license } : {}), ...(e.integrity ? { integrity: e.integrity } : {}),
      ...(known ? { debian: { package: known.package, version: known.version, architecture: known.architecture } } : {}), ...(e.plugin ? { plugin: e.plugin } : {}),
    };
  });
  const plugin = layer.entries.find((e) => e.plugin)?.plugin;
  // Native files only: a Python environment's thousands of .py files belong to the Debian packages it lists.
  const systemFiles = layer.files.filter((f): f is typeof f & { source: string } =>
    typeof f.source === 'string' && isNativeFile(f.path) && SYSTEM_DIRS.some((d) => f.path.startsWith(d)));
  if (systemFiles.length === 0) return entries;
  const origins = await debianOrigins(systemFiles.map((f) => f.source), dpkgCache);
  const listed = new Set(layer.entries.filter((e) => e.type === 'deb').map((e) => e.name));
  const unlisted = systemFiles.map((f) => ({ path: f.path, origin: origins.get(f.source) })).filter((f) => !f.origin || !listed.has(f.origin.package));
  const bare: Component[] = [];
  for (const f of systemFiles) {
    if (origins.has(f.source)) continue;
    bare.push({ part: 'deps', layer: layer.name, type: 'file', name: path.posix.basename(f.path), ...(await hashed(f.source, digestCache)), paths: [f.path], ...(plugin ? { plugin } : {}) });
  }
  return [...entries, ...debPackages('deps', layer.name, unlisted, plugin), ...bare];
}

/**
 * A base imported from an image: the Debian packages its dpkg database (/var/lib/dpkg/status in its layers) says
 * are installed, kept by the base's layer digests (the layers are read once per base).
 */
async function importedBasePackages(base: BaseImage, layer: string, cacheDir: string): Promise<Component[]> {
  const key = createHash('sha256').update(base.layers.map((l) => l.digest).join(',')).digest('hex').slice(0, 32);
  const file = path.join(cacheDir, `base-status-${key}.json`);
  let packages = await readFile(file, 'utf8').then((t) => JSON.parse(t) as DebianOrigin[], () => undefined);
  if (!packages) {
    const status = await fileInLayers(base.layers, '/var/lib/dpkg/status');
    packages = status ? installedInStatus(status.toString('utf8')) : [];
    await mkdir(cacheDir, { recursive: true });
    const temp = `${file}.${process.pid}.tmp`;
    await writeFile(temp, JSON.stringify(packages));
    await rename(temp, file);
  }
  return packages.map((p) => ({ part: 'base', layer, type: 'deb', name: p.package, version: p.version, debian: { package: p.package, version: p.version, architecture: p.architecture } }));
}

/** The installed packages of a dpkg status file, sorted by name. */
function installedInStatus(text: string): DebianOrigin[] {
  const out: DebianOrigin[] = [];
  for (const stanza of text.split(/\n\s*\n/)) {
    const field = (name: string) => new RegExp(`^${name}: (.*)$`, 'm').exec(stanza)?.[1]?.trim();
    const [name, version, architecture, status] = [field('Package'), field('Version'), field('Architecture'), field('Status')];
    if (name && version && architecture && status?.endsWith(' installed')) out.push({ package: name, version, architecture });
  }
  return out.sort((a, b) => (a.package < b.package ? -1 : a.package > b.package ? 1 : 0));
}
