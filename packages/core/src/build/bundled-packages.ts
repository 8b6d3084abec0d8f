import { existsSync, readFileSync, statSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import path from 'node:path';

/** This file: an input of every bundle whose packages it lists, so a change to how they are found re-lists them. */
export const BUNDLED_PACKAGES_FILE = fileURLToPath(import.meta.url);

/** An npm package whose code esbuild put into a bundle. */
export interface BundledPackage {
  name: string;
  version: string;
  license?: string;
  /** The lockfile's integrity for it (sha512-…); absent for a workspace or linked package, which has none. */
  integrity?: string;
}

interface PackageJson { name?: string; version?: string; license?: unknown; licenses?: unknown }

/**
 * The npm packages a bundle holds, from esbuild's metafile inputs (absolute paths): each input's nearest
 * package.json names its package. Inputs of the project itself (its own package.json, or none up to the project
 * root) are the model's code, not a dependency. Sorted by name and version, so the manifest is reproducible.
 */
export function bundledPackages(inputs: string[], projectRoot?: string): BundledPackage[] {
  const byDir = new Map<string, BundledPackage | null>();
  const found = new Map<string, BundledPackage>();
  const ownRoot = projectRoot ? path.resolve(projectRoot) : undefined;
  for (const input of inputs) {
    if (!path.isAbsolute(input)) continue; // esbuild's virtual modules (namespace:…) have no package
    const dir = packageDirOf(path.dirname(input), ownRoot);
    if (!dir) continue;
    if (!byDir.has(dir)) byDir.set(dir, readPackage(dir));
    const pkg = byDir.get(dir);
    if (pkg) found.set(`${pkg.name}@${pkg.version}`, pkg);
  }
  return [...found.values()].sort((a, b) => (a.name === b.name ? cmp(a.version, b.version) : cmp(a.name, b.name)));
}

const cmp = (a: string, b: string) => (a < b ? -1 : a > b ? 1 : 0);

/** The nearest directory with a package.json that names a package; undefined for the project's own files. */
function packageDirOf(start: string, ownRoot: string | undefined): string | undefined {
  for (let dir = start; dir !== path.dirname(dir); dir = path.dirname(dir)) {
    // The project's own code, up to and including its root: not a dependency, whatever package.json it has.
    if (ownRoot && (dir === ownRoot || !path.relative(ownRoot, dir).startsWith('..')) && !dir.split(path.sep).includes('node_modules')) return undefined;
    const file = path.join(dir, 'package.json');
    if (!existsSync(file)) continue;
    const json = readJson(file);
    // A package.json without a name (e.g. {"type": "module"} in a subfolder) does not start a package.
    if (json && typeof json.name === 'string' && typeof json.version === 'string') return dir;
  }
  return undefined;
}

function readPackage(dir: string): BundledPackage | null {
  const json = readJson(path.join(dir, 'package.json'));
  if (!json?.name || !json.version) return null;
  const license = licenseOf(json);
  const integrity = lockfileIntegrity(dir);
  return { name: json.name, version: json.version, ...(license ? { license } : {}), ...(integrity ? { integrity } : {}) };
}

function readJson(file: string): PackageJson | undefined {
  try {
    return JSON.parse(readFileSync(file, 'utf8')) as PackageJson;
  } catch {
    return undefined;
  }
}

/** `license` as a string, or the legacy `{ type }` / `licenses: [{ type }]` forms joined with OR. */
function licenseOf(json: PackageJson): string | undefined {
  if (typeof json.license === 'string') return json.license;
  const typeOf = (l: unknown) => (l && typeof l === 'object' && typeof (l as { type?: unknown }).type === 'string' ? (l as { type: string }).type : undefined);
  if (typeOf(json.license)) return typeOf(json.license);
  if (Array.isArray(json.licenses)) {
    const types = json.licenses.map(typeOf).filter((t): t is string => Boolean(t));
    if (types.length) return types.length === 1 ? types[0] : `(${types.join(' OR ')})`;
  }
  return undefined;
}

const lockfiles = new Map<string, Record<string, { integrity?: string }> | undefined>();

/** The integrity npm recorded for the package at `pkgDir`, from the package-lock.json of the tree it is installed in. */
function lockfileIntegrity(pkgDir: string): string | undefined {
  for (let dir = path.dirname(pkgDir); dir !== path.dirname(dir); dir = path.dirname(dir)) {
    if (path.basename(dir) !== 'node_modules') continue;
    const root = path.dirname(dir);
    for (const lock of [path.join(root, 'package-lock.json'), path.join(dir, '.package-lock.json')]) {
      const key = `${lock}:${existsSync(lock) ? statSync(lock).mtimeMs : 'missing'}`;
      if (!lockfiles.has(key)) lockfiles.set(key, existsSync(lock) ? (JSON.parse(readFileSync(lock, 'utf8')) as { packages?: Record<string, { integrity?: string }> }).packages : undefined);
      const integrity = lockfiles.get(key)?.[path.relative(root, pkgDir).split(path.sep).join('/')]?.integrity;
      if (integrity) return integrity;
    }
  }
  return undefined;
}
