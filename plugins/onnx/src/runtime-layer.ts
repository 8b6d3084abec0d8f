/**
 * The onnxruntime-node dependency layer: exactly the files that run on the target platform, laid out as
 * /opt/pyml/node_modules/<pkg>/... where the image's model code and adapters resolve bare imports.
 */
import { createRequire } from 'node:module';
import { existsSync, readFileSync, readdirSync, realpathSync } from 'node:fs';
import { basename, dirname, join, relative, sep } from 'node:path';
import type { DependencyEntry, DependencyLayer, LayerFile, Platform } from '@pyml/core/types';

export const IMAGE_NODE_MODULES = '/opt/pyml/node_modules';

/** OCI architecture → Node's process.arch, as onnxruntime-node names its binary folders. */
const NODE_ARCH: Record<Platform['architecture'], string> = { amd64: 'x64', arm64: 'arm64' };

interface PackageJson { name: string; version: string; license?: string; binary?: { napi_versions?: number[] } }

interface ResolvedPackage { dir: string; json: PackageJson }

function readPackage(dir: string): ResolvedPackage {
  return { dir, json: JSON.parse(readFileSync(join(dir, 'package.json'), 'utf8')) as PackageJson };
}

/** The directory of the package that contains `file` (walks up to the package.json naming `name`). */
function packageDirOf(file: string, name: string): string {
  for (let dir = dirname(file); dir !== dirname(dir); dir = dirname(dir)) {
    const pj = join(dir, 'package.json');
    if (existsSync(pj) && (JSON.parse(readFileSync(pj, 'utf8')) as PackageJson).name === name) return dir;
  }
  throw new Error(`cannot find the package directory of ${name} above ${file}`);
}

/** onnxruntime-node as installed next to this plugin, and the onnxruntime-common it resolves. */
export function resolveRuntimePackages(from: string = import.meta.url): { node: ResolvedPackage; common: ResolvedPackage } {
  const require = createRequire(from);
  let nodePkgJson: string;
  try {
    nodePkgJson = require.resolve('onnxruntime-node/package.json');
  } catch (error) {
    throw new Error(`onnxruntime-node is not installed where @pyml/plugin-onnx can resolve it (npm install onnxruntime-node): ${(error as Error).message}`, { cause: error });
  }
  const node = readPackage(realpathSync(dirname(nodePkgJson)));
  // onnxruntime-common's exports map hides package.json, so resolve its entry from onnxruntime-node and walk up.
  const commonEntry = createRequire(join(node.dir, 'package.json')).resolve('onnxruntime-common');
  const common = readPackage(realpathSync(packageDirOf(commonEntry, 'onnxruntime-common')));
  return { node, common };
}

/** Integrity of an installed package from the npm lockfile that installed it (package-lock.json or node_modules/.package-lock.json). */
export function lockfileIntegrity(pkgDir: string): string | undefined {
  for (let dir = dirname(pkgDir); dir !== dirname(dir); dir = dirname(dir)) {
    if (basename(dir) !== 'node_modules') continue;
    const root = dirname(dir);
    for (const lock of [join(root, 'package-lock.json'), join(dir, '.package-lock.json')]) {
      if (!existsSync(lock)) continue;
      const packages = (JSON.parse(readFileSync(lock, 'utf8')) as { packages?: Record<string, { integrity?: string }> }).packages ?? {};
      const key = relative(root, pkgDir).split(sep).join('/');
      if (packages[key]?.integrity) return packages[key].integrity;
    }
  }
  return undefined;
}

/** Files under `dir` (recursive, sorted), relative, that `keep` accepts. */
function listFiles(dir: string, keep: (rel: string) => boolean, prefix = ''): string[] {
  if (!existsSync(dir)) return [];
  const out: string[] = [];
  for (const entry of readdirSync(dir, { withFileTypes: true }).sort((a, b) => (a.name < b.name ? -1 : 1))) {
    const rel = prefix ? `${prefix}/${entry.name}` : entry.name;
    if (entry.isDirectory()) out.push(...listFiles(join(dir, entry.name), keep, rel));
    else if (entry.isFile() && keep(rel)) out.push(rel);
  }
  return out;
}

// Runtime JavaScript only: type declarations and source maps are build-time material.
const isRuntimeJs = (rel: string) => rel.endsWith('.js') && !rel.endsWith('.d.ts');
const isLicense = (rel: string) => !rel.includes('/') && /^(licen[cs]e|notice|thirdpartynotices)/i.test(rel);

/** Relative paths of the files of onnxruntime-node that run on `platform`. */
function runtimeNodeFiles(pkg: ResolvedPackage, platform: Platform): string[] {
  const arch = NODE_ARCH[platform.architecture];
  if (platform.os !== 'linux' || !arch) throw new Error(`onnx: unsupported target platform ${platform.os}/${platform.architecture}`);
  const napi = Math.max(...(pkg.json.binary?.napi_versions ?? [6]));
  const binDir = `bin/napi-v${napi}/linux/${arch}`;
  const binaries = listFiles(join(pkg.dir, binDir), () => true).map((f) => `${binDir}/${f}`);
  if (!binaries.some((f) => f.endsWith('.node'))) {
    throw new Error(`onnx: onnxruntime-node@${pkg.json.version} at ${pkg.dir} has no binary for linux/${platform.architecture} (looked in ${binDir})`);
  }
  const js = listFiles(join(pkg.dir, 'dist'), isRuntimeJs).map((f) => `dist/${f}`);
  return ['package.json', ...listFiles(pkg.dir, isLicense), ...js, ...binaries];
}

function runtimeCommonFiles(pkg: ResolvedPackage): string[] {
  // dist/cjs and dist/esm each carry a package.json that sets the module type; both are needed.
  const dist = listFiles(join(pkg.dir, 'dist'), (rel) => isRuntimeJs(rel) || rel.endsWith('/package.json')).map((f) => `dist/${f}`);
  return ['package.json', ...listFiles(pkg.dir, isLicense), ...dist];
}

const isNative = (rel: string) => rel.endsWith('.node') || /\.so(\.\d+)*$/.test(rel) || rel.endsWith('.dylib') || rel.endsWith('.dll');

function entryOf(pkg: ResolvedPackage): DependencyEntry {
  // No `plugin` field: the build names the plugin whose hook returned the layer (another plugin may reuse this one).
  const entry: DependencyEntry = { name: pkg.json.name, version: pkg.json.version, type: 'npm' };
  if (pkg.json.license) entry.license = pkg.json.license;
  const integrity = lockfileIntegrity(pkg.dir);
  if (integrity) entry.integrity = integrity;
  return entry;
}

/** The layer itself: file list (with parent directories), deps-manifest entries and a cache key. */
export function onnxRuntimeLayer(platform: Platform, from: string = import.meta.url): DependencyLayer {
  const { node, common } = resolveRuntimePackages(from);
  const files: LayerFile[] = [];
  const dirs = new Set<string>();
  const add = (pkg: ResolvedPackage, rels: string[]) => {
    const root = `${IMAGE_NODE_MODULES}/${pkg.json.name}`;
    for (const rel of rels) {
      const path = `${root}/${rel}`;
      for (let d = dirname(path); d.startsWith(IMAGE_NODE_MODULES); d = dirname(d)) dirs.add(d);
      files.push({ path, source: join(pkg.dir, ...rel.split('/')), mode: isNative(rel) ? 0o755 : 0o644 });
    }
  };
  add(node, runtimeNodeFiles(node, platform));
  add(common, runtimeCommonFiles(common));
  for (const d of dirs) files.push({ path: d, directory: true, mode: 0o755 });
  files.sort((a, b) => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0));
  return {
    name: 'onnxruntime-node',
    files,
    entries: [entryOf(node), entryOf(common)],
    // Versions and platform pin the contents; bump `layout` when the file selection above changes.
    cacheKey: `${node.json.name}@${node.json.version}+${common.json.name}@${common.json.version}/${platform.os}/${platform.architecture}#layout1`,
  };
}
