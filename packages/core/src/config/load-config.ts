import { readFile, stat } from 'node:fs/promises';
import path from 'node:path';
import { ConfigError } from '../errors.ts';
import { loadTsConfigFile } from './compile-ts-config.ts';
import { validateUserConfig } from './validate-config.ts';
import { resolveConfig } from './resolve-config.ts';
import { pluginsOf } from './plugin-entries.ts';
import { PymlPackageResolver } from './pyml-package-resolver.ts';
import type { ResolvedConfig } from '../types.ts';

export const CONFIG_FILES = ['pyml.config.ts', 'pyml.config.mts', 'pyml.config.js', 'pyml.config.mjs', 'pyml.config.json', 'pyml.config.yaml', 'pyml.config.yml'];

/** Configs that are code: compiled by esbuild and imported (compile-ts-config.ts). */
const CODE_CONFIG = /\.(ts|mts|js|mjs)$/;

/**
 * cosmiconfig reads the JSON and YAML configs; it is loaded only for them (a code config is found by a stat per
 * name and compiled directly, which keeps cosmiconfig and its parsers out of `pyml build`'s start-up).
 */
async function dataConfig(file: string): Promise<{ config: unknown; filepath: string; isEmpty?: boolean } | null> {
  const { cosmiconfig } = await import('cosmiconfig');
  return cosmiconfig('pyml', { searchPlaces: CONFIG_FILES.filter((name) => !CODE_CONFIG.test(name)), searchStrategy: 'none', cache: false }).load(file);
}

/** The config file a project directory holds: the first of CONFIG_FILES there (cosmiconfig's order). */
async function configFileIn(dir: string): Promise<string | undefined> {
  for (const name of CONFIG_FILES) {
    const file = path.join(dir, name);
    if ((await stat(file).catch(() => undefined))?.isFile()) return file;
  }
  return undefined;
}

async function readConfigFile(file: string): Promise<{ config: unknown; filepath: string; isEmpty?: boolean }> {
  if (!CODE_CONFIG.test(file)) return (await dataConfig(file))!;
  // As cosmiconfig does: a file of only whitespace is an empty config, not a module to run.
  if ((await readFile(file, 'utf8')).trim() === '') return { config: undefined, filepath: file, isEmpty: true };
  return { config: await loadTsConfigFile(file), filepath: file };
}

/** Finds the config in a project directory (or takes a config file path), validates it and resolves it. */
export async function loadConfig(projectOrFile: string): Promise<ResolvedConfig> {
  const target = path.resolve(projectOrFile);
  const info = await stat(target).catch(() => undefined);
  if (!info) throw new ConfigError(`${target}: no such project directory or config file`);
  let found: { config: unknown; filepath: string; isEmpty?: boolean } | null;
  try {
    const file = info.isDirectory() ? await configFileIn(target) : target;
    found = file === undefined ? null : await readConfigFile(file);
  } catch (err) {
    if (err instanceof ConfigError) throw err;
    throw new ConfigError(`${info.isDirectory() ? target : target}: cannot read the config: ${(err as Error).message}`);
  }
  if (!found) {
    throw new ConfigError(`${target}: no pyml config found (looked for ${CONFIG_FILES.join(', ')})`,
      'run `pyml init` to create one, or pass the path of your config file');
  }
  if (found.isEmpty || found.config === undefined) {
    throw new ConfigError(`${found.filepath}: the config is empty`, 'export default defineConfig({ name, version, ... })');
  }
  const user = validateUserConfig(found.config, found.filepath);
  const plugins = await pluginsOf(user.plugins ?? [], found.filepath, new PymlPackageResolver(path.dirname(found.filepath)));
  return resolveConfig(user, found.filepath, plugins);
}
