import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import type { Plugin } from 'esbuild';
import { ConfigError } from '../errors.ts';
import { findPackage, packageRootOf, readPackageJson, resolvePackageSubpath, splitBareSpecifier } from './package-lookup.ts';

/**
 * Where `@pyml/*` imports of a project (its config, its model, its plugins) come from: the project's own copy when
 * it installed one (its node_modules or any above it), else this pyml's own packages, so a project needs no
 * `npm install` to build. A project's copy must be of this pyml's release line (see compatibilityLine).
 */

export interface ResolvedModule {
  /** Absolute path of the module file. */
  path: string;
  /** The same as a file URL, for import(). */
  url: string;
  /** 'project' when the project has the package, 'pyml' when it comes with this pyml. */
  from: 'project' | 'pyml';
  /** Real path of the package directory. */
  packageDir: string;
}

const SCOPE = '@pyml/';
/** Third-party packages in the model contract's own types (DataFrameModel.predict takes and returns an Arrow Table). */
const CONTRACT_DEPENDENCIES = /^apache-arrow(\/.*)?$/;
/** This module's own @pyml/core: src/config/ in a checkout, dist/config/ when installed, two levels below the package. */
const CORE_DIR = fileURLToPath(new URL('../../', import.meta.url));

let ownVersion: string | undefined;
/** The version of the @pyml/core this pyml runs. */
export function pymlVersion(): string {
  ownVersion ??= readPackageJson(CORE_DIR).version ?? '0.0.0';
  return ownVersion;
}

export function pymlCoreDir(): string {
  return path.resolve(CORE_DIR);
}

/**
 * The part of a version that must agree for two @pyml packages to work together. npm's caret rule: from 1.0.0 the
 * major (1.2.0 works with 1.9.3); below it the minor counts as the major (0.1.0 and 0.1.5 agree, 0.2.0 does not),
 * since a 0.x release may break its API in any minor.
 */
export function compatibilityLine(version: string): string {
  const m = /^(\d+)\.(\d+)\./.exec(version);
  if (!m) return version;
  return m[1] === '0' ? `0.${m[2]}` : m[1]!;
}

export function isPymlSpecifier(specifier: string): boolean {
  return specifier.startsWith(SCOPE) && specifier.length > SCOPE.length;
}

export class PymlPackageResolver {
  private readonly cache = new Map<string, ResolvedModule>();

  /** `projectDir`: where the project's node_modules lookup starts (the config file's directory). */
  constructor(readonly projectDir: string) {}

  /** The module an `@pyml/<pkg>[/<subpath>]` specifier names. Throws a ConfigError on a version mismatch or when neither has it. */
  resolve(specifier: string): ResolvedModule {
    const cached = this.cache.get(specifier);
    if (cached) return cached;
    const resolved = this.resolveUncached(specifier, true);
    this.cache.set(specifier, resolved);
    return resolved;
  }

  /**
   * Any package specifier, the project first, then this pyml's own packages (how JSON and YAML configs find their
   * plugins). @pyml packages are checked as in resolve(). Undefined when neither has it.
   */
  resolveAny(specifier: string): ResolvedModule | undefined {
    if (isPymlSpecifier(specifier)) return this.resolveUncached(specifier, false);
    return this.inProject(specifier) ?? fromPyml(specifier);
  }

  private resolveUncached(specifier: string, required: true): ResolvedModule;
  private resolveUncached(specifier: string, required: boolean): ResolvedModule | undefined;
  private resolveUncached(specifier: string, required: boolean): ResolvedModule | undefined {
    const parts = splitBareSpecifier(specifier);
    if (!parts) throw new ConfigError(`'${specifier}' is not a package name`);
    const own = findPackage(parts.name, this.projectDir);
    if (own) {
      this.checkVersion(parts.name, own.dir, own.json.version);
      const file = resolvePackageSubpath(own.dir, own.json, parts.subpath);
      if (!file) {
        throw new ConfigError(`${specifier}: your project's ${parts.name} (${own.dir}) does not export '${parts.subpath}'`,
          `check the import; this pyml's ${parts.name} would be used if the project did not have its own`);
      }
      return { path: file, url: pathToFileURL(file).href, from: 'project', packageDir: own.dir };
    }
    const mine = fromPyml(specifier);
    if (mine || !required) return mine;
    throw new ConfigError(`cannot find ${specifier}: neither your project (${this.projectDir}) nor this pyml (${pymlCoreDir()}) has it`,
      `check the name; the packages that come with pyml are @pyml/core, @pyml/contract and the plugins @pyml/plugin-onnx, -sklearn, -tfjs, -python and -pytorch`);
  }

  /** A specifier as the project alone resolves it (no version check: for packages other than @pyml's). */
  inProject(specifier: string): ResolvedModule | undefined {
    const parts = splitBareSpecifier(specifier);
    if (!parts) return undefined;
    const own = findPackage(parts.name, this.projectDir);
    const file = own && resolvePackageSubpath(own.dir, own.json, parts.subpath);
    return own && file ? { path: file, url: pathToFileURL(file).href, from: 'project', packageDir: own.dir } : undefined;
  }

  /**
   * A package the model contract is built on (apache-arrow: a DataFrameModel's `Table`), as the project has it, else
   * as this pyml's @pyml/contract has it, so a dataframe model builds without an `npm install` too. Undefined when
   * the project has it (the bundler finds it as usual) or neither does.
   */
  contractDependency(specifier: string): ResolvedModule | undefined {
    if (this.inProject(specifier)) return undefined;
    const parts = splitBareSpecifier(specifier);
    const contract = this.resolve('@pyml/contract');
    const found = parts && findPackage(parts.name, contract.packageDir);
    const file = found && resolvePackageSubpath(found.dir, found.json, parts.subpath);
    return found && file ? { path: file, url: pathToFileURL(file).href, from: 'pyml', packageDir: found.dir } : undefined;
  }

  private checkVersion(name: string, dir: string, version: string | undefined): void {
    const mine = pymlVersion();
    if (version && compatibilityLine(version) === compatibilityLine(mine)) return;
    throw new ConfigError(
      `your project's ${name} ${version ?? '(no version)'} (${dir}) does not match this pyml ${mine} (${pymlCoreDir()})`,
      `install ${name}@${compatibilityLine(mine)} in the project, or remove the project's @pyml packages to use this pyml's own`
      + (version ? `, or use a pyml ${compatibilityLine(version)}.x` : ''));
  }
}

/** A specifier as this pyml's own @pyml/core resolves it: Node's resolver, under whatever conditions are active. */
function fromPyml(specifier: string): ResolvedModule | undefined {
  let url: string;
  try {
    url = import.meta.resolve(specifier);
  } catch {
    return undefined;
  }
  if (!url.startsWith('file:')) return undefined;
  const file = fileURLToPath(url);
  return { path: file, url, from: 'pyml', packageDir: packageRootOf(file) ?? path.dirname(file) };
}

/** When esbuild failed because a resolver threw a ConfigError (a version mismatch, a missing package), that error. */
export function configErrorIn(err: unknown): ConfigError | undefined {
  const errors = (err as { errors?: { detail?: unknown }[] }).errors ?? [];
  return errors.map((e) => e.detail).find((d): d is ConfigError => d instanceof ConfigError);
}

/**
 * esbuild plugin: `@pyml/*` imports resolved by the resolver. 'external' leaves the import in the output, rewritten
 * to the resolved module's file URL (for code Node imports: the compiled config); 'absolute' does the same with an
 * absolute path (for code esbuild may bundle later as well as Node import: compiled plugin packages, since esbuild
 * does not read file URLs); 'bundle' bundles the resolved file (the model).
 */
export function pymlImportsPlugin(resolver: PymlPackageResolver, mode: 'external' | 'absolute' | 'bundle'): Plugin {
  return {
    name: 'pyml-packages',
    setup(build) {
      build.onResolve({ filter: /^@pyml\/[^/]+/ }, (args) => {
        let resolved: ResolvedModule;
        try {
          resolved = resolver.resolve(args.path);
        } catch (err) {
          // Returned rather than thrown, so esbuild locates it at the import (a thrown error is located in this file).
          return { errors: [{ text: (err as Error).message, detail: err }] };
        }
        if (mode === 'bundle') return { path: resolved.path };
        return { path: mode === 'external' ? resolved.url : resolved.path, external: true };
      });
      // A model bundles what the contract is built on from this pyml when the project has none of its own.
      if (mode === 'bundle') {
        build.onResolve({ filter: CONTRACT_DEPENDENCIES }, (args) => {
          const resolved = resolver.contractDependency(args.path);
          return resolved ? { path: resolved.path } : undefined;
        });
      }
    },
  };
}
