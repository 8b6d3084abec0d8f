import { cosmiconfig } from 'cosmiconfig';
import { stat } from 'node:fs/promises';
import path from 'node:path';
import { ConfigError } from '../errors.ts';
import { loadTsConfigFile } from './compile-ts-config.ts';
import { validateUserConfig } from './validate-config.ts';
import { resolveConfig } from './resolve-config.ts';
import { pluginsOf } from './plugin-entries.ts';
import { PymlPackageResolver } from './pyml-package-resolver.ts';
import type { ResolvedConfig } from '../types.ts';

export const CONFIG_FILES = ['pyml.config.ts', 'pyml.config.mts', 'pyml.config.js', 'pyml.config.mjs', 'pyml.config.json', 'pyml.config.yaml', 'pyml.config.yml'];

const explorer = cosmiconfig('pyml', {
  searchPlaces: CONFIG_FILES,
  searchStrategy: 'none',
  cache: false,
  loaders: {
    '.ts': (file) => loadTsConfigFile(file),
    '.mts': (file) => loadTsConfigFile(file),
    '.js': (file) => loadTsConfigFile(file),
    '.mjs': (file) => loadTsConfigFile(file),
  },
});

/** Finds the config in a project directory (or takes a config file path), validates it and resolves it. */
export async function loadConfig(projectOrFile: string): Promise<ResolvedConfig> {
  const target = path.resolve(projectOrFile);
  const info = await stat(target).catch(() => undefined);
  if (!info) throw new ConfigError(`${target}: no such project directory or config file`);
  let found: { config: unknown; filepath: string; isEmpty?: boolean } | null;
  try {
    found = info.isDirectory() ? await explorer.search(target) : await explorer.load(target);
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
