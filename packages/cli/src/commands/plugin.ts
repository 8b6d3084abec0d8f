import path from 'node:path';
import { parseCommandArgs } from '../args.ts';
import { EXIT, PymlError } from '@pyml/errors';
import { printJson, usage } from '../output.ts';
import { PACKAGE_NAME, pluginNames, pluginPackageFiles } from '../scaffold/plugin-package.ts';
import { existing, shellQuote, writeScaffold } from '../scaffold/write-files.ts';

export const help = `Usage: pyml plugin init [DIR] [options]

Scaffolds a framework plugin package in DIR (default '.'): package.json, src/index.ts with one hook of each kind
(configResolved, transformWeights, describeWeights, defaultModel, bundleOptions, dependencies, runtimeAdapter,
buildEnd), a runtime adapter, a default model, a test (hooks called directly, then an example model project
built and predicted with the pyml on PATH), an example/ project and a README. Types come from @pyml/core/types;
@pyml/core and @pyml/contract are optional peers, provided by the installed pyml that loads the plugin, so the
package installs into a project (npm install ../DIR) without fetching them, or a config names it by path.
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
  cd pyml-plugin-lightgbm && npm install && npm test
`;

export async function run(args: string[]): Promise<number> {
  const { values, positionals } = parseCommandArgs('plugin', {
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
  const files = await pluginPackageFiles(names, path.basename(dir));
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
  const dirName = path.basename(dir);
  process.stdout.write(`next:\n  cd ${shellQuote(dir)}\n`
    + '  npm install              # dev tools only (tsx, typescript, @types/node); @pyml/* come from the installed pyml\n'
    + '  npm test                 # hooks, then example/ built and predicted with the pyml on PATH\n'
    + '  pyml build example --out .pyml/example-image\n'
    + `a model project uses it by path ("plugins": ["../${dirName}"] in pyml.config.json), or after npm install ../${dirName}\n`);
  return EXIT.ok;
}
