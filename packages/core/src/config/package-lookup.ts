import { existsSync, readFileSync, realpathSync, statSync } from 'node:fs';
import path from 'node:path';
import { exports as resolveExports } from 'resolve.exports';

/**
 * Finding a package and the file a specifier names in it, the way Node's ESM resolver does (node_modules up the
 * directory tree, then the `exports` map with the conditions Node would use, read by resolve.exports), without
 * importing anything. Not `import.meta.resolve`: Node 20's cannot take a parent other than the calling module;
 * not `createRequire().resolve`: it would use the `require` condition, missing packages that export only `import`.
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

/**
 * The absolute path of `subpath` ('.' or './x') in the package at `dir`, honouring its `exports` (resolve.exports
 * applies Node's rules: exact keys, `*` patterns, nested conditions, first match wins) under the given conditions;
 * without `exports`, `main` or index.js for '.' and the path itself for a subpath. Undefined when the package does
 * not export it.
 */
export function resolvePackageSubpath(dir: string, json: PackageJson, subpath: string, conditions = activeConditions()): string | undefined {
  if (json.exports === undefined || json.exports === null) {
    if (subpath !== '.') return withExtension(path.join(dir, subpath));
    return withExtension(path.join(dir, json.main ?? 'index.js')) ?? withExtension(path.join(dir, 'index'));
  }
  let targets: string[] | undefined;
  try {
    // unsafe: exactly these conditions (plus `default`), not the library's guess of import/require and node.
    targets = resolveExports(json as Parameters<typeof resolveExports>[0], subpath, { unsafe: true, conditions: [...conditions] }) ?? undefined;
  } catch {
    return undefined; // not exported under these conditions
  }
  for (const target of targets ?? []) {
    const file = path.resolve(dir, target);
    if (existsSync(file)) return file;
  }
  return undefined;
}

/** The file as named, or with a JS/TS extension added (packages without `exports` may leave it off). */
function withExtension(file: string): string | undefined {
  for (const candidate of [file, ...['.js', '.mjs', '.ts', '.mts'].map((e) => file + e)]) {
    if (existsSync(candidate) && statSync(candidate).isFile()) return candidate;
  }
  return undefined;
}
