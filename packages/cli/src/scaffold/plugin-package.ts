import { readFile } from 'node:fs/promises';
import { TEMPLATES } from './frameworks.ts';
import type { ScaffoldFile } from './write-files.ts';

/** Files of templates/plugin/, relative. */
const PLUGIN_FILES = [
  'README.md', 'src/index.ts', 'src/linear-format.ts', 'src/adapter.ts', 'src/default-model.ts',
  'tsconfig.json', 'test/plugin.test.ts', 'example/pyml.config.json', 'example/weights/model.linear.csv', 'example/sample.json',
];

export interface PluginNames {
  /** npm package name, e.g. pyml-plugin-lightgbm or @acme/pyml-plugin-lightgbm. */
  pkg: string;
  /** Plugin name (hook errors, ctx.adapter(name)), e.g. lightgbm. */
  plugin: string;
  /** The factory's identifier in configs, e.g. lightgbm. */
  id: string;
}

export const PACKAGE_NAME = /^(@[a-z0-9][a-z0-9._-]*\/)?[a-z0-9][a-z0-9._-]*$/;

export function pluginNames(pkg: string): PluginNames {
  const plugin = pkg.replace(/^@[^/]+\//, '').replace(/^pyml-plugin-/, '') || 'plugin';
  const id = plugin.replace(/[^a-zA-Z0-9]+(.)/g, (_, c: string) => c.toUpperCase()).replace(/^[^a-zA-Z_$]+/, '') || 'plugin';
  return { pkg, plugin, id };
}

/**
 * The plugin's package.json. @pyml/* are in no registry (pyml is an installed tool), so nothing here may make npm
 * fetch them: they are optional peers (the build that loads the plugin is the installed pyml's, with its own
 * @pyml/core and @pyml/contract), and the dev dependencies are registry packages only. Without `optional`,
 * `npm install ../the-plugin` into a project would try to install the peers from the registry and fail.
 */
function packageJson(n: PluginNames): string {
  const peers = { '@pyml/contract': '^0.1.0', '@pyml/core': '^0.1.0' };
  return `${JSON.stringify({
    name: n.pkg,
    version: '0.1.0',
    description: `pyml framework plugin: ${n.plugin}`,
    license: 'MIT',
    type: 'module',
    exports: { '.': './src/index.ts', './*': './src/*.ts' },
    files: ['src', 'README.md'],
    keywords: ['pyml', 'pyml-plugin'],
    scripts: { test: 'node --import tsx --test test/plugin.test.ts', typecheck: 'tsc --noEmit' },
    peerDependencies: peers,
    peerDependenciesMeta: Object.fromEntries(Object.keys(peers).map((p) => [p, { optional: true }])),
    devDependencies: { tsx: '^4.20.0', typescript: '^5.9.0', '@types/node': '^20.19.0' },
  }, null, 2)}\n`;
}

/** Every file of a new plugin package in a directory named `dirName`, for `pyml plugin init`. */
export async function pluginPackageFiles(n: PluginNames, dirName: string): Promise<ScaffoldFile[]> {
  const fill = (t: string) => t.replaceAll('__PACKAGE_DIR__', dirName).replaceAll('__PACKAGE__', n.pkg).replaceAll('__PLUGIN_ID__', n.id).replaceAll('__PLUGIN__', n.plugin);
  const files: ScaffoldFile[] = [];
  for (const f of PLUGIN_FILES) files.push({ path: f, content: fill(await readFile(`${TEMPLATES}plugin/${f}`, 'utf8')) });
  files.push({ path: 'package.json', content: packageJson(n) }, { path: '.gitignore', content: 'node_modules/\n.pyml/\n' });
  return files;
}
