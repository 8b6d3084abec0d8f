import { existsSync, statSync } from 'node:fs';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { ConfigError } from '../errors.ts';
import type { PluginEntry, PymlPlugin } from '../types.ts';
import { importableEntry } from './compile-plugin-package.ts';
import { packageRootOf, readPackageJson, resolvePackageSubpath, splitBareSpecifier } from './package-lookup.ts';
import { isPymlSpecifier, type PymlPackageResolver } from './pyml-package-resolver.ts';

/**
 * Plugins a config names instead of passing objects (what a JSON or YAML config can do): a short name ('onnx' →
 * @pyml/plugin-onnx, else pyml-plugin-onnx), a package name, a path relative to the config (a package directory
 * or a file), or [nameOrPath, options]. Each is found in the project first, then among this pyml's own packages;
 * its default export is the plugin factory, called with the options.
 */

/** The plugins that come with pyml, by short name. */
export const BUILTIN_PLUGINS = ['onnx', 'sklearn', 'tfjs', 'python', 'pytorch'];

const isPath = (spec: string) => spec.startsWith('./') || spec.startsWith('../') || path.isAbsolute(spec) || spec === '.' || spec === '..';
const isShortName = (spec: string) => /^[a-z0-9][a-z0-9._-]*$/.test(spec) && !spec.startsWith('pyml-plugin-');

/** Every entry as a plugin object; objects pass through. `file` is the config file (for paths and messages). */
export async function pluginsOf(entries: PluginEntry[], file: string, resolver: PymlPackageResolver): Promise<PymlPlugin[]> {
  const plugins: PymlPlugin[] = [];
  for (const [i, entry] of entries.entries()) {
    if (typeof entry === 'string') plugins.push(await instantiate(entry, undefined, file, i, resolver));
    else if (Array.isArray(entry)) plugins.push(await instantiate(entry[0], entry[1], file, i, resolver));
    else plugins.push(entry);
  }
  return plugins;
}

async function instantiate(spec: string, options: Record<string, unknown> | undefined, file: string, i: number, resolver: PymlPackageResolver): Promise<PymlPlugin> {
  const where = `${file}: plugins[${i}]`;
  const byFile = isPath(spec) && !statSync(path.resolve(path.dirname(file), spec), { throwIfNoEntry: false })?.isDirectory();
  const { entry, ours } = isPath(spec) ? { entry: entryOfPath(spec, file, where), ours: false } : entryOfName(spec, where, resolver);
  // pyml's own packages ship JavaScript (their TypeScript sources are only used in pyml's checkout, under tsx). A
  // file named by path inside the project's own package is one file; a package directory or name, a package.
  const importable = ours ? entry
    : await importableEntry(entry, resolver, path.join(path.dirname(file), '.pyml', 'plugins'), byFile ? packageRootOf(file) : undefined);
  let mod: { default?: unknown };
  try {
    mod = (await import(pathToFileURL(importable).href)) as { default?: unknown };
  } catch (err) {
    throw new ConfigError(`${where}: loading '${spec}' (${entry}) failed: ${(err as Error).message}`,
      'check that the plugin package and its dependencies are installed where the project or pyml can find them');
  }
  if (typeof mod.default !== 'function') {
    throw new ConfigError(`${where}: '${spec}' (${entry}) does not default-export a function (its default export is ${describe(mod.default)})`,
      'a plugin package default-exports its factory: `export default function myPlugin(options) { return { name, ... } }`');
  }
  let plugin: unknown;
  try {
    plugin = options === undefined ? (mod.default as () => unknown)() : (mod.default as (o: unknown) => unknown)(options);
  } catch (err) {
    throw new ConfigError(`${where}: the factory of '${spec}' threw: ${(err as Error).message}`,
      options === undefined ? undefined : `check the options given to it: ${JSON.stringify(options)}`);
  }
  if (!plugin || typeof plugin !== 'object' || typeof (plugin as { name?: unknown }).name !== 'string' || !(plugin as { name: string }).name) {
    throw new ConfigError(`${where}: the factory of '${spec}' returned ${describe(plugin)}, not a plugin object with a name`,
      'the default export must return { name, apiVersion: 1, ...hooks }');
  }
  return plugin as PymlPlugin;
}

function describe(value: unknown): string {
  if (value === undefined) return 'undefined';
  if (value === null) return 'null';
  if (Array.isArray(value)) return 'an array';
  return typeof value === 'object' ? 'an object' : `a ${typeof value}`;
}

/** A path: a package directory (its package.json's entry) or a module file. */
function entryOfPath(spec: string, file: string, where: string): string {
  const target = path.resolve(path.dirname(file), spec);
  if (!existsSync(target)) throw new ConfigError(`${where}: '${spec}' does not exist (${target})`, 'a path is relative to the config file');
  if (!statSync(target).isDirectory()) return target;
  if (!existsSync(path.join(target, 'package.json'))) {
    throw new ConfigError(`${where}: '${spec}' is a directory without a package.json (${target})`,
      'name a plugin package directory (with a package.json) or the plugin module file itself');
  }
  const entry = resolvePackageSubpath(target, readPackageJson(target), '.');
  if (!entry) throw new ConfigError(`${where}: the package at '${spec}' (${target}) names no entry file that exists`, "set its package.json `exports` ('.') or `main`");
  return entry;
}

/** A short name or a package name, found in the project, then in this pyml. */
function entryOfName(spec: string, where: string, resolver: PymlPackageResolver): { entry: string; ours: boolean } {
  if (!splitBareSpecifier(spec)) throw new ConfigError(`${where}: '${spec}' is neither a plugin name, a package name nor a path`, 'a path starts with ./ or ../');
  const candidates = isShortName(spec) ? [`@pyml/plugin-${spec}`, `pyml-plugin-${spec}`] : [spec];
  for (const candidate of candidates) {
    const found = resolver.resolveAny(candidate);
    if (found) return { entry: found.path, ours: isPymlSpecifier(candidate) };
  }
  // A plugin package without the prefix counts only when the project installed it (pyml's own dependencies are no plugins).
  const unprefixed = isShortName(spec) ? resolver.inProject(spec) : undefined;
  if (unprefixed) return { entry: unprefixed.path, ours: false };
  if (isShortName(spec)) candidates.push(spec);
  if (isShortName(spec)) {
    throw new ConfigError(`${where}: unknown plugin '${spec}' (looked for ${candidates.join(', ')} in the project and in pyml)`,
      `known plugins: ${BUILTIN_PLUGINS.join(', ')}; or name a package or a path (./plugins/my-plugin)`);
  }
  throw new ConfigError(`${where}: cannot find the plugin package '${spec}' in the project (${resolver.projectDir}) or in pyml`,
    `install it in the project (npm install ${spec}) or name it by path`);
}
