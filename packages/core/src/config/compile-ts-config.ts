import type { Plugin } from 'esbuild';
import { esbuild } from '../build/esbuild-api.ts';
import { existsSync, statSync } from 'node:fs';
import { mkdir, rm, writeFile } from 'node:fs/promises';
import { isBuiltin } from 'node:module';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { randomBytes } from 'node:crypto';
import { ConfigError } from '../errors.ts';
import { importableEntry, isTypeScriptFile, sourceFile } from './compile-plugin-package.ts';
import { findPackage, packageRootOf, readPackageJson, resolvePackageSubpath, splitBareSpecifier } from './package-lookup.ts';
import { configErrorIn, isPymlSpecifier, pymlImportsPlugin, PymlPackageResolver } from './pyml-package-resolver.ts';

/**
 * Loads a TypeScript (or JS) config file: esbuild compiles it, the result is written beside the config (in .pyml/)
 * and imported. Imports of packages stay imports: `@pyml/*` rewritten to the file the resolver picks (the project's
 * copy or this pyml's own), other packages resolved by Node from the project, except packages written in
 * TypeScript, which are compiled first (see compile-plugin-package.ts).
 */
export async function loadTsConfigFile(file: string, resolver = new PymlPackageResolver(path.dirname(file))): Promise<unknown> {
  let code: string;
  try {
    const result = await esbuild().build({
      entryPoints: [file], bundle: true, write: false, platform: 'node', format: 'esm', target: 'node20',
      packages: 'external', logLevel: 'silent', sourcemap: 'inline',
      plugins: [pymlImportsPlugin(resolver, 'external'), typeScriptPackages(resolver, path.join(path.dirname(file), '.pyml', 'plugins'), packageRootOf(file))],
    });
    code = result.outputFiles[0]!.text;
  } catch (err) {
    const first = (err as { errors?: { text: string; location?: { line: number; column: number } | null }[] }).errors?.[0];
    const where = first?.location ? `:${first.location.line}:${first.location.column}` : '';
    const config = configErrorIn(err);
    if (config) throw new ConfigError(`${file}${where}: ${config.message}`, config.hint);
    throw new ConfigError(`${file}${where}: cannot compile the config: ${first?.text ?? (err as Error).message}`);
  }
  // Written next to the config so bare imports resolve exactly as they would from the config itself.
  const dir = path.join(path.dirname(file), '.pyml');
  await mkdir(dir, { recursive: true });
  const compiled = path.join(dir, `config.${randomBytes(6).toString('hex')}.mjs`);
  await writeFile(compiled, code);
  try {
    const mod = (await import(pathToFileURL(compiled).href)) as { default?: unknown };
    return mod.default;
  } catch (err) {
    throw new ConfigError(`${file}: evaluating the config failed: ${(err as Error).message}`,
      'check the imports in the config; a plugin package must be installed in the project (or come with pyml)');
  }
  finally {
    await rm(compiled, { force: true });
  }
}

/**
 * Packages the config imports whose entry is TypeScript (a plugin made by `pyml plugin init`, installed into the
 * project or imported by its directory path): compiled into the project's cache and imported from there, since
 * Node cannot import .ts. Everything else is left to `packages: 'external'` and esbuild's own bundling.
 */
function typeScriptPackages(resolver: PymlPackageResolver, cacheRoot: string, projectPackage: string | undefined): Plugin {
  return {
    name: 'pyml-typescript-packages',
    setup(b) {
      b.onResolve({ filter: /.*/ }, async (args) => {
        if (args.kind === 'entry-point' || isPymlSpecifier(args.path) || isBuiltin(args.path)) return undefined;
        const entry = entryOf(args.path, args.resolveDir, projectPackage);
        if (!entry || !isTypeScriptFile(entry)) return undefined;
        try {
          return { path: pathToFileURL(await importableEntry(entry, resolver, cacheRoot)).href, external: true };
        } catch (err) {
          // Returned, not thrown, so esbuild locates the error at the import.
          return { errors: [{ text: (err as Error).message, detail: err }] };
        }
      });
    },
  };
}

/**
 * The file an import names when it is another package's: a bare specifier from `dir`, a relative path naming a
 * package directory, or a relative path to a file of a package other than the project's (`projectPackage`, the
 * config's nearest package.json directory). Undefined for the project's own files, which are bundled into the config.
 */
function entryOf(specifier: string, dir: string, projectPackage: string | undefined): string | undefined {
  const bare = splitBareSpecifier(specifier);
  if (bare) {
    const pkg = findPackage(bare.name, dir);
    return pkg && resolvePackageSubpath(pkg.dir, pkg.json, bare.subpath);
  }
  if (!specifier.startsWith('.')) return undefined;
  const target = path.resolve(dir, specifier);
  if (existsSync(path.join(target, 'package.json')) && statSync(target).isDirectory()) return resolvePackageSubpath(target, readPackageJson(target), '.');
  const file = sourceFile(target);
  const root = file && packageRootOf(file);
  // Its import.meta.url must stay its own (plugins find their adapters beside themselves): not bundled into the config.
  return root && root !== projectPackage ? file : undefined;
}
