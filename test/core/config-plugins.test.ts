/**
 * Configs that name their plugins (JSON and YAML can do nothing else): short names, package names, [name, options],
 * paths; TypeScript plugin packages compiled into the project's cache; and the errors for entries that are wrong.
 * Projects live in temp directories outside the checkout, with no node_modules unless a test puts a plugin there.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { existsSync, readdirSync } from 'node:fs';
import { mkdir, mkdtemp, readFile, rm, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { loadConfig, CONFIG_FILES } from '../../packages/core/src/config/load-config.ts';
import { ConfigError } from '../../packages/core/src/errors.ts';
import { REPO } from '../helpers/cli.ts';

const dirs: string[] = [];
test.after(async () => { for (const d of dirs) await rm(d, { recursive: true, force: true }); });

async function tempDir(prefix: string): Promise<string> {
  const dir = await mkdtemp(path.join(tmpdir(), prefix));
  dirs.push(dir);
  assert.ok(path.relative(REPO, dir).startsWith('..'), `${dir} must be outside the checkout`);
  return dir;
}

async function writeTree(root: string, files: Record<string, string>): Promise<void> {
  for (const [name, content] of Object.entries(files)) {
    await mkdir(path.dirname(path.join(root, name)), { recursive: true });
    await writeFile(path.join(root, name), content);
  }
}

async function project(files: Record<string, string>): Promise<string> {
  const dir = await tempDir('pyml-config-plugins-');
  await writeTree(dir, files);
  return dir;
}

const json = (plugins: unknown[]) => JSON.stringify({ name: 'named', version: '1.0.0', plugins }, null, 2);

async function configError(run: () => Promise<unknown>): Promise<ConfigError> {
  try {
    await run();
  } catch (err) {
    assert.instance(err, ConfigError, String((err as Error).stack));
    return err as ConfigError;
  }
  return assert.unreachable('expected a ConfigError') as never;
}

/**
 * A TypeScript plugin package as `pyml plugin init` makes them (exports pointing at src/index.ts), tiny: its factory
 * takes options, imports a sibling helper, imports a type from @pyml/core and a value from @pyml/contract, and
 * computes its adapter's path beside itself with its own extension.
 */
const TS_PLUGIN: Record<string, string> = {
  'package.json': JSON.stringify({ name: '@acme/pyml-plugin-tiny', version: '0.3.0', type: 'module', exports: { '.': './src/index.ts' } }),
  'src/index.ts': `import type { PymlPlugin } from '@pyml/core/types';
import { isDataType } from '@pyml/contract';
import { fileURLToPath } from 'node:url';
import { extname } from 'node:path';
import { describeFormat } from './helper.ts';
import { suffix } from './nested/suffix';

export interface TinyOptions { label?: string }

const ADAPTER = fileURLToPath(new URL('./adapter' + extname(fileURLToPath(import.meta.url)), import.meta.url));

export default function tiny(options: TinyOptions = {}): PymlPlugin & { label: string; adapterFile: string; fp32: boolean } {
  return { name: 'tiny', apiVersion: 1, label: describeFormat(options.label ?? 'none') + suffix, adapterFile: ADAPTER, fp32: isDataType('FP32') };
}
`,
  'src/helper.ts': `export const describeFormat = (label: string): string => \`tiny:\${label}\`;\n`,
  'src/nested/suffix.ts': `export const suffix: string = '!';\n`,
  'src/adapter.ts': `export default function adapter() { return { name: 'tiny' }; }\n`,
};

type Tiny = { name: string; label: string; adapterFile: string; fp32: boolean };

test('CONFIG_FILES finds pyml.config.yaml and pyml.config.yml', () => {
  assert.ok(CONFIG_FILES.includes('pyml.config.yaml'));
  assert.ok(CONFIG_FILES.includes('pyml.config.yml'));
});

test('pyml.config.json: "onnx", "@pyml/plugin-onnx" and ["onnx", {}] are this pyml\'s ONNX plugin', async () => {
  for (const entry of ['onnx', '@pyml/plugin-onnx', ['onnx', {}], ['onnx', { loadCheckMaxMB: 1 }]]) {
    const dir = await project({ 'pyml.config.json': json([entry]) });
    const config = await loadConfig(dir);
    assert.equal(config.plugins.map((p) => p.name), ['onnx'], JSON.stringify(entry));
    assert.ok(typeof config.plugins[0]!.describeWeights === 'function');
  }
});

test('pyml.config.yaml and .yml name plugins the same way, several at once', async () => {
  const yaml = `name: named\nversion: '1.0.0'\nplugins:\n  - onnx\n  - [sklearn, {}]\n  - '@pyml/plugin-tfjs'\n`;
  for (const file of ['pyml.config.yaml', 'pyml.config.yml']) {
    const dir = await project({ [file]: yaml });
    const config = await loadConfig(dir);
    assert.is(config.configFile, path.join(dir, file));
    assert.equal(config.plugins.map((p) => p.name), ['onnx', 'sklearn', 'tfjs']);
  }
});

test('an unknown short name names the file, the entry, what was looked for and the known plugins', async () => {
  const dir = await project({ 'pyml.config.json': json(['onnx', 'lightgbm']) });
  const err = await configError(() => loadConfig(dir));
  assert.is(err.message, `${path.join(dir, 'pyml.config.json')}: plugins[1]: unknown plugin 'lightgbm' (looked for @pyml/plugin-lightgbm, pyml-plugin-lightgbm, lightgbm in the project and in pyml)`);
  assert.is(err.hint, 'known plugins: onnx, sklearn, tfjs, python, pytorch; or name a package or a path (./plugins/my-plugin)');
});

test('entries of the wrong shape fail validation, each naming plugins[i] and what a plugin entry may be', async () => {
  const dir = await project({ 'pyml.config.json': json(['onnx', 42, ['onnx', 'verbose'], { version: '1' }, '']) });
  const err = await configError(() => loadConfig(dir));
  const file = path.join(dir, 'pyml.config.json');
  const lines = err.message.split('\n');
  for (const i of [1, 2, 3, 4]) {
    assert.ok(lines.some((l) => l.startsWith(`${file}: plugins[${i}] must be a plugin name or path (a string), a [name, { options }] pair, or a plugin object with a name (hint: "onnx"`)), err.message);
  }
  assert.is(lines.length, 4, err.message);
});

test("a package that does not default-export a function says so; a factory's result must be a plugin object", async () => {
  const dir = await project({
    'pyml.config.json': json(['pyml-plugin-nofactory']),
    'node_modules/pyml-plugin-nofactory/package.json': JSON.stringify({ name: 'pyml-plugin-nofactory', version: '1.0.0', type: 'module', exports: './index.js' }),
    'node_modules/pyml-plugin-nofactory/index.js': "export default { name: 'not-a-factory' };\n",
    'node_modules/pyml-plugin-noname/package.json': JSON.stringify({ name: 'pyml-plugin-noname', version: '1.0.0', type: 'module', main: 'index.js' }),
    'node_modules/pyml-plugin-noname/index.js': 'export default () => ({ hooks: true });\n',
  });
  const err = await configError(() => loadConfig(dir));
  assert.match(err.message, `${path.join(dir, 'pyml.config.json')}: plugins[0]: 'pyml-plugin-nofactory' (${path.join(dir, 'node_modules/pyml-plugin-nofactory/index.js')}) does not default-export a function (its default export is an object)`);
  assert.match(err.hint ?? '', /default-exports its factory/);
  // Short name → the pyml-plugin- package the project installed.
  await writeFile(path.join(dir, 'pyml.config.json'), json(['noname']));
  const noname = await configError(() => loadConfig(dir));
  assert.match(noname.message, "plugins[0]: the factory of 'noname' returned an object, not a plugin object with a name");
});

test('a path that does not exist, or a directory without a package.json, is an error naming both', async () => {
  const dir = await project({ 'pyml.config.json': json(['./plugins/missing']), 'empty/README.md': 'nothing here\n' });
  const missing = await configError(() => loadConfig(dir));
  assert.match(missing.message, `plugins[0]: './plugins/missing' does not exist (${path.join(dir, 'plugins/missing')})`);
  await writeFile(path.join(dir, 'pyml.config.json'), json([['./empty', {}]]));
  const empty = await configError(() => loadConfig(dir));
  assert.match(empty.message, `plugins[0]: './empty' is a directory without a package.json (${path.join(dir, 'empty')})`);
});

test('a TypeScript plugin package named by path in JSON is compiled into .pyml/plugins and loads, with its options', async () => {
  const parent = await tempDir('pyml-ts-plugin-');
  await writeTree(path.join(parent, 'tiny'), TS_PLUGIN);
  await mkdir(path.join(parent, 'project'));
  await writeFile(path.join(parent, 'project', 'pyml.config.json'), json([['../tiny', { label: 'x' }]]));
  const config = await loadConfig(path.join(parent, 'project'));
  const tiny = config.plugins[0] as unknown as Tiny;
  assert.is(tiny.name, 'tiny');
  assert.is(tiny.label, 'tiny:x!');
  assert.ok(tiny.fp32);
  // One output per source, the layout kept: the adapter computed beside the compiled index is the compiled adapter.
  const cache = path.join(parent, 'project', '.pyml', 'plugins');
  const [compiled, ...more] = readdirSync(cache);
  assert.equal(more, [], 'no temporary directory is left behind');
  assert.match(compiled!, /^acme\+pyml-plugin-tiny-[0-9a-f]{16}$/);
  assert.is(tiny.adapterFile, path.join(cache, compiled!, 'src', 'adapter.js'));
  // Only JavaScript is written: no TypeScript source sits beside its compiled twin.
  assert.not.ok(existsSync(path.join(cache, compiled!, 'src', 'adapter.ts')));
  for (const f of ['src/index.js', 'src/helper.js', 'src/nested/suffix.js', 'src/adapter.js', 'package.json']) assert.ok(existsSync(path.join(cache, compiled!, f)), f);
  const index = await readFile(path.join(cache, compiled!, 'src/index.js'), 'utf8');
  assert.match(index, /from "\.\/helper\.js"/);
  assert.match(index, /from "\.\/nested\/suffix\.js"/);
  // @pyml/contract rewritten to the file this pyml resolves, by absolute path (esbuild can bundle it later too).
  assert.match(index, /from "\/[^"]*contract[^"]*"/);
  // Same content, same directory: a second load reuses it; a change makes a new one.
  await loadConfig(path.join(parent, 'project'));
  assert.is(readdirSync(cache).length, 1);
  await writeFile(path.join(parent, 'tiny/src/nested/suffix.ts'), "export const suffix: string = '?';\n");
  assert.is(((await loadConfig(path.join(parent, 'project'))).plugins[0] as unknown as Tiny).label, 'tiny:x?');
  assert.is(readdirSync(cache).length, 2);
});

test("a TypeScript plugin package installed into the project's node_modules as a symlink: by name in YAML, imported in TS", async () => {
  const parent = await tempDir('pyml-ts-plugin-');
  await writeTree(path.join(parent, 'tiny'), TS_PLUGIN);
  const dir = await project({ 'pyml.config.yaml': "name: named\nversion: '1.0.0'\nplugins:\n  - ['@acme/pyml-plugin-tiny', { label: yaml }]\n" });
  await mkdir(path.join(dir, 'node_modules/@acme'), { recursive: true });
  await symlink(path.join(parent, 'tiny'), path.join(dir, 'node_modules/@acme/pyml-plugin-tiny'), 'dir');
  assert.is(((await loadConfig(dir)).plugins[0] as unknown as Tiny).label, 'tiny:yaml!');

  await rm(path.join(dir, 'pyml.config.yaml'));
  await writeFile(path.join(dir, 'pyml.config.ts'), `import { defineConfig } from '@pyml/core';
import tiny from '@acme/pyml-plugin-tiny';
export default defineConfig({ name: 'named', version: '1.0.0', plugins: [tiny({ label: 'ts' })] });
`);
  const config = await loadConfig(dir);
  assert.is((config.plugins[0] as unknown as Tiny).label, 'tiny:ts!');
  assert.match((config.plugins[0] as unknown as Tiny).adapterFile, /\.pyml\/plugins\/acme\+pyml-plugin-tiny-[0-9a-f]{16}\/src\/adapter\.js$/);
});

test("a TypeScript plugin package's own example imports it by its package name (a self-reference)", async () => {
  const parent = await tempDir('pyml-ts-plugin-');
  await writeTree(path.join(parent, 'tiny'), {
    ...TS_PLUGIN,
    'example/pyml.config.ts': "import tiny from '@acme/pyml-plugin-tiny';\nexport default { name: 'example', version: '1.0.0', plugins: [tiny({ label: 'self' })] };\n",
    'example-json/pyml.config.json': json([['..', { label: 'dir' }]]),
  });
  const config = await loadConfig(path.join(parent, 'tiny', 'example'));
  assert.is((config.plugins[0] as unknown as Tiny).label, 'tiny:self!');
  // The same package named by its directory from a JSON config inside it is the package too, compiled whole.
  const byDir = (await loadConfig(path.join(parent, 'tiny', 'example-json'))).plugins[0] as unknown as Tiny;
  assert.is(byDir.label, 'tiny:dir!');
  assert.match(byDir.adapterFile, /example-json\/\.pyml\/plugins\/acme\+pyml-plugin-tiny-[0-9a-f]{16}\/src\/adapter\.js$/);
  // The copy leaves out the example's own .pyml (where the copy itself lives).
  const [compiled] = readdirSync(path.join(parent, 'tiny/example/.pyml/plugins'));
  assert.ok(existsSync(path.join(parent, 'tiny/example/.pyml/plugins', compiled!, 'example/pyml.config.js')));
  assert.not.ok(existsSync(path.join(parent, 'tiny/example/.pyml/plugins', compiled!, 'example/.pyml')));
});

test("a TS config importing a TypeScript plugin package by path (its directory, or its entry file) gets the compiled package", async () => {
  const parent = await tempDir('pyml-ts-plugin-');
  await writeTree(path.join(parent, 'tiny'), TS_PLUGIN);
  for (const [i, specifier] of ['../tiny', '../tiny/src/index.ts'].entries()) {
    const dir = path.join(parent, `project-${i}`);
    await writeTree(dir, { 'pyml.config.ts': `import tiny from '${specifier}';\nexport default { name: 'named', version: '1.0.0', plugins: [tiny({ label: '${i}' })] };\n` });
    const tiny = (await loadConfig(dir)).plugins[0] as unknown as Tiny;
    assert.is(tiny.label, `tiny:${i}!`);
    // Not bundled into the config: the plugin's own import.meta.url still finds its adapter.
    assert.ok(tiny.adapterFile.startsWith(path.join(dir, '.pyml', 'plugins')), tiny.adapterFile);
    assert.ok(existsSync(tiny.adapterFile));
  }
});

test("a TypeScript plugin file of the project's own package is bundled alone, not the project compiled and copied", async () => {
  const dir = await project({
    'package.json': JSON.stringify({ name: 'my-model', private: true, type: 'module' }),
    'pyml.config.json': json([['./plugins/single.ts', { label: 'one' }]]),
    'plugins/single.ts': "import { isDataType } from '@pyml/contract';\nimport { prefix } from './single-helper.ts';\nexport default (o: { label: string }) => ({ name: 'single', label: prefix + o.label, fp32: isDataType('FP32') });\n",
    'plugins/single-helper.ts': "export const prefix: string = 'single:';\n",
    'src/model.ts': 'export default class {}\n',
    'weights/big.bin': 'x'.repeat(1 << 20),
  });
  const plugin = (await loadConfig(dir)).plugins[0] as unknown as { name: string; label: string; fp32: boolean };
  assert.equal([plugin.name, plugin.label, plugin.fp32], ['single', 'single:one', true]);
  const cached = readdirSync(path.join(dir, '.pyml', 'plugins'));
  assert.is(cached.length, 1, cached.join(', '));
  assert.match(cached[0]!, /^single-[0-9a-f]{16}\.mjs$/);
});

test('a TS config may name plugins as strings too', async () => {
  const dir = await project({ 'pyml.config.ts': "export default { name: 'named', version: '1.0.0', plugins: ['onnx', ['sklearn', {}]] };\n" });
  assert.equal((await loadConfig(dir)).plugins.map((p) => p.name), ['onnx', 'sklearn']);
});

test('a compile error in a TypeScript plugin package names the file and line', async () => {
  const parent = await tempDir('pyml-ts-plugin-');
  await writeTree(path.join(parent, 'tiny'), { ...TS_PLUGIN, 'src/helper.ts': 'export const describeFormat = (label: string) => {\n' });
  await mkdir(path.join(parent, 'project'));
  await writeFile(path.join(parent, 'project', 'pyml.config.json'), json(['../tiny']));
  const err = await configError(() => loadConfig(path.join(parent, 'project')));
  assert.match(err.message, `${path.join(parent, 'tiny/src/helper.ts')}:2:`);
  assert.match(err.message, /cannot compile the plugin package/);
});

test.run();
