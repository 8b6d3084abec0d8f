import path from 'node:path';
import { parseArgs } from 'node:util';
import { EXIT, PymlError } from '@pyml/errors';
import { printJson, usage } from '../output.ts';
import { PACKAGE_NAME, pluginNames, pluginPackageFiles } from '../scaffold/plugin-package.ts';
import { existing, writeScaffold } from '../scaffold/write-files.ts';

export const help = `Usage: pyml plugin init [DIR] [options]

Scaffolds a framework plugin package in DIR (default '.'): package.json, src/index.ts with one hook of each kind
(configResolved, transformWeights, describeWeights, defaultModel, bundleOptions, dependencies, runtimeAdapter,
buildEnd), a runtime adapter, a default model, a test (hooks called directly, then an example model project
built and predicted with the real CLI), an example/ project and a README. Types come from @pyml/core/types.
As scaffolded it serves a stand-in format (linear models as JSON) so everything runs; replace it with yours.
Never overwrites: if any of those files exists, nothing is written and the command exits 2 naming them.
The hooks are documented in docs/plugins.md.

Options:
  --name PACKAGE   npm package name (default: pyml-plugin-<DIR's name>); the plugin's name drops 'pyml-plugin-'
  --json           print one JSON object (dir, package, plugin, files)
  -h, --help       show this help

Examples:
  pyml plugin init pyml-plugin-lightgbm
  pyml plugin init plugins/catboost --name @acme/pyml-plugin-catboost
  cd pyml-plugin-lightgbm && npm test
`;

export async function run(args: string[]): Promise<number> {
  const { values, positionals } = parseArgs({
    args, allowPositionals: true,
    options: { name: { type: 'string' }, json: { type: 'boolean', default: false }, help: { type: 'boolean', short: 'h' } },
  });
  if (values.help) { process.stdout.write(help); return EXIT.ok; }
  const [action, target, ...rest] = positionals;
  if (action !== 'init' || rest.length) throw usage('usage: pyml plugin init [DIR] [--name PACKAGE]');
  const dir = path.resolve(target ?? '.');
  const base = path.basename(dir).toLowerCase().replace(/[^a-z0-9._-]+/g, '-').replace(/^[._-]+|[._-]+$/g, '');
  const pkg = values.name ?? (base.startsWith('pyml-plugin-') ? base : `pyml-plugin-${base || 'framework'}`);
  if (!PACKAGE_NAME.test(pkg)) throw usage(`--name '${pkg}' is not an npm package name (lower-case, e.g. pyml-plugin-lightgbm or @acme/pyml-plugin-x)`);
  const names = pluginNames(pkg);
  const files = await pluginPackageFiles(names);
  const clash = existing(dir, files);
  if (clash.length) {
    throw new PymlError(`${dir}: ${clash.join(', ')} already exist${clash.length === 1 ? 's' : ''}; pyml plugin init never overwrites, nothing was written`,
      EXIT.usage, 'choose an empty directory, or move those files away');
  }
  await writeScaffold(dir, files);
  const written = files.map((f) => f.path).sort();
  if (values.json) {
    printJson({ ok: true, dir, package: names.pkg, plugin: names.plugin, files: written });
    return EXIT.ok;
  }
  process.stdout.write(`created plugin package ${names.pkg} (plugin '${names.plugin}') in ${dir}\n${written.map((f) => `  ${f}`).join('\n')}\n\n`);
  process.stdout.write(`next:\n  cd ${dir}\n  npm install\n  npm test                 # hooks, then example/ built and predicted\n  npx pyml build example --out /tmp/example-image\n`);
  return EXIT.ok;
}
