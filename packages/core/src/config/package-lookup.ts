import { existsSync, readFileSync, realpathSync, statSync } from 'node:fs';
import path from 'node:path';

/**
 * Finding a package and the file a specifier names in it, the way Node's ESM resolver does (node_modules up the
 * directory tree, then the `exports` map with the conditions Node would use), without importing anything. Own
 * code because Node 20's `import.meta.resolve` cannot take a parent other than the calling module, and
 * `createRequire().resolve` would use the `require` condition, missing packages that export only `import`.
 */

export interface PackageJson {
  name?: string;
  version?: string;
  type?: string;
  main?: string;
  exports?: unknown;
}

export interface FoundPackage {
  /** Real path of the package directory (symlinks followed, as Node loads modules by real path). */
  dir: string;
  json: PackageJson;
}

/** `@scope/name/sub/path` → { name: '@scope/name', subpath: './sub/path' }; undefined for relative, absolute, URL or node: specifiers. */
export function splitBareSpecifier(specifier: string): { name: string; subpath: string } | undefined {
  if (/^(\.|\/|#|[a-zA-Z][a-zA-Z0-9+.-]*:)/.test(specifier)) return undefined;
  const parts = specifier.split('/');
  const nameParts = specifier.startsWith('@') ? parts.slice(0, 2) : parts.slice(0, 1);
  if (nameParts.some((p) => !p)) return undefined;
  const rest = parts.slice(nameParts.length);
  return { name: nameParts.join('/'), subpath: rest.length ? `./${rest.join('/')}` : '.' };
}

export function readPackageJson(dir: string): PackageJson {
  return JSON.parse(readFileSync(path.join(dir, 'package.json'), 'utf8')) as PackageJson;
}

function readPackageJsonOrNothing(dir: string): PackageJson | undefined {
  try {
    return readPackageJson(dir);
  } catch {
    return undefined;
  }
}

/** The package `name` as Node would find it from `fromDir`: itself, or `node_modules/<name>` in that directory or any above. */
export function findPackage(name: string, fromDir: string): FoundPackage | undefined {
  // A package importing itself by name (its example/ importing the plugin), as Node allows when it has `exports`.
  const scope = packageRootOf(path.join(fromDir, 'x'));
  const json = scope ? readPackageJsonOrNothing(scope) : undefined;
  if (scope && json?.name === name && json.exports !== undefined) return { dir: realpathSync(scope), json };
  for (let dir = path.resolve(fromDir); ; dir = path.dirname(dir)) {
    if (path.basename(dir) !== 'node_modules') {
      const candidate = path.join(dir, 'node_modules', name);
      if (existsSync(path.join(candidate, 'package.json'))) {
        const real = realpathSync(candidate);
        return { dir: real, json: readPackageJson(real) };
      }
    }
    if (path.dirname(dir) === dir) return undefined;
  }
}

/** The nearest directory at or above `file` that holds a package.json. */
export function packageRootOf(file: string): string | undefined {
  for (let dir = path.dirname(path.resolve(file)); ; dir = path.dirname(dir)) {
    if (existsSync(path.join(dir, 'package.json'))) return dir;
    if (path.dirname(dir) === dir) return undefined;
  }
}

/**
 * The conditions this process resolves with: Node's own for `import` plus any `--conditions`/`-C` given on the
 * command line or in NODE_OPTIONS (the checkout's tests run with `source`, which points packages at src/*.ts),
 * and `source` whenever this module itself runs from its TypeScript source.
 */
export function activeConditions(): Set<string> {
  const conditions = new Set(['node', 'import', 'default']);
  // pyml run from its checkout adds `source` with a resolve hook (packages/cli/bin), which leaves no trace in argv.
  if (import.meta.url.endsWith('.ts')) conditions.add('source');
  const args = [...process.execArgv, ...(process.env.NODE_OPTIONS ?? '').split(/\s+/).filter(Boolean)];
  for (let i = 0; i < args.length; i++) {
    const arg = args[i]!;
    const m = /^(?:--conditions|-C)(?:=(.*))?$/.exec(arg);
    if (!m) continue;
    const value = m[1] ?? args[++i];
    if (value) conditions.add(value);
  }
  return conditions;
}

/** The file a package's export target names under the given conditions (first matching key wins, as in Node). */
function pickTarget(target: unknown, conditions: Set<string>): string | undefined {
  if (typeof target === 'string') return target;
  if (Array.isArray(target)) {
    for (const t of target) {
      const picked = pickTarget(t, conditions);
      if (picked) return picked;
    }
    return undefined;
  }
  if (target && typeof target === 'object') {
    for (const [key, value] of Object.entries(target)) {
      if (conditions.has(key)) {
        const picked = pickTarget(value, conditions);
        if (picked !== undefined) return picked;
      }
    }
  }
  return undefined;
}

/**
 * The absolute path of `subpath` ('.' or './x') in the package at `dir`, honouring its `exports` (exact keys and
 * `*` patterns); without `exports`, `main` or index.js for '.' and the path itself for a subpath. Undefined
 * when the package does not export it.
 */
export function resolvePackageSubpath(dir: string, json: PackageJson, subpath: string, conditions = activeConditions()): string | undefined {
  const exp = json.exports;
  if (exp === undefined || exp === null) {
    if (subpath !== '.') return withExtension(path.join(dir, subpath));
    return withExtension(path.join(dir, json.main ?? 'index.js')) ?? withExtension(path.join(dir, 'index'));
  }
  const map = typeof exp === 'string' || Array.isArray(exp) || !Object.keys(exp as object).some((k) => k.startsWith('.'))
    ? { '.': exp } as Record<string, unknown> : exp as Record<string, unknown>;
  let target: string | undefined;
  if (subpath in map) {
    target = pickTarget(map[subpath], conditions);
  } else {
    // The longest pattern prefix wins, as in Node.
    const patterns = Object.keys(map).filter((k) => k.includes('*')).sort((a, b) => b.indexOf('*') - a.indexOf('*'));
    for (const key of patterns) {
      const [prefix, suffix] = [key.slice(0, key.indexOf('*')), key.slice(key.indexOf('*') + 1)];
      if (subpath.startsWith(prefix) && subpath.endsWith(suffix) && subpath.length >= key.length - 1) {
        const star = subpath.slice(prefix.length, subpath.length - suffix.length);
        target = pickTarget(map[key], conditions)?.replaceAll('*', star);
        break;
      }
    }
  }
  if (!target) return undefined;
  const file = path.resolve(dir, target);
  return existsSync(file) ? file : undefined;
}

/** The file as named, or with a JS/TS extension added (packages without `exports` may leave it off). */
function withExtension(file: string): string | undefined {
  for (const candidate of [file, ...['.js', '.mjs', '.ts', '.mts'].map((e) => file + e)]) {
    if (existsSync(candidate) && statSync(candidate).isFile()) return candidate;
  }
  return undefined;
}
