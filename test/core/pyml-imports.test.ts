/**
 * A project outside pyml's checkout, with no node_modules: its config's and its model's `@pyml/*` imports resolve to
 * this pyml's own packages; a project that installed @pyml packages of another release line gets an error naming
 * both. Real esbuild, real imports, the config loaded as `pyml build` loads it.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { loadConfig } from '../../packages/core/src/config/load-config.ts';
import { bundleModel } from '../../packages/core/src/build/bundle-model.ts';
import { ConfigError } from '../../packages/core/src/errors.ts';
import { compatibilityLine, PymlPackageResolver, pymlCoreDir, pymlVersion } from '../../packages/core/src/config/pyml-package-resolver.ts';
import { REPO } from '../helpers/cli.ts';

const dirs: string[] = [];
test.after(async () => { for (const d of dirs) await rm(d, { recursive: true, force: true }); });

/** A project directory under the system temp dir (outside the checkout), with the given files and no node_modules. */
async function project(files: Record<string, string>): Promise<string> {
  const dir = await mkdtemp(path.join(tmpdir(), 'pyml-imports-'));
  dirs.push(dir);
  for (const [name, content] of Object.entries(files)) {
    await mkdir(path.dirname(path.join(dir, name)), { recursive: true });
    await writeFile(path.join(dir, name), content);
  }
  assert.ok(path.relative(REPO, dir).startsWith('..'), `${dir} must be outside the checkout`);
  if (!Object.keys(files).some((f) => f.startsWith('node_modules/'))) assert.not.ok(existsSync(path.join(dir, 'node_modules')));
  return dir;
}

const TS_CONFIG = `import { defineConfig } from '@pyml/core';
import onnx from '@pyml/plugin-onnx';
export default defineConfig({ name: 'outside', version: '1.0.0', model: './src/model.ts', plugins: [onnx()] });
`;

const MODEL = `import { TensorModel, tensor, type Tensor } from '@pyml/contract';
export default class Doubler extends TensorModel {
  init() {}
  async predict(inputs: Record<string, Tensor>) {
    const x = inputs.x!;
    return { y: tensor('FP64', x.shape, Float64Array.from(x.data as Float64Array, (v) => v * 2)) };
  }
}
`;

async function configError(run: () => Promise<unknown>): Promise<ConfigError> {
  try {
    await run();
  } catch (err) {
    assert.instance(err, ConfigError, String((err as Error).stack));
    return err as ConfigError;
  }
  return assert.unreachable('expected a ConfigError') as never;
}

test('a pyml.config.ts outside the checkout imports @pyml/core and @pyml/plugin-onnx from this pyml', async () => {
  const dir = await project({ 'pyml.config.ts': TS_CONFIG, 'src/model.ts': MODEL });
  const config = await loadConfig(dir);
  assert.is(config.name, 'outside');
  assert.equal(config.plugins.map((p) => p.name), ['onnx']);
  assert.ok(typeof config.plugins[0]!.describeWeights === 'function');
});

test("the project's model imports TensorModel from @pyml/contract and bundles", async () => {
  const dir = await project({ 'pyml.config.ts': TS_CONFIG, 'src/model.ts': MODEL });
  const bundle = await bundleModel(path.join(dir, 'src/model.ts'), { external: [], plugins: [], define: {} }, 'tensor', dir, path.join(dir, '.pyml', 'tmp'));
  assert.is(bundle.kind, 'tensor');
  assert.match(bundle.code, /Doubler/);
  // The map names the project's file relative to the project, not the checkout the contract came from.
  assert.ok((JSON.parse(bundle.map) as { sources: string[] }).sources.some((s) => s.endsWith('src/model.ts')));
});

test("a dataframe model importing apache-arrow bundles from this pyml's contract when the project has none", async () => {
  const model = `import { DataFrameModel } from '@pyml/contract';
import { tableFromArrays, type Table } from 'apache-arrow';
export default class Echo extends DataFrameModel {
  init() {}
  async predict(df: Table): Promise<Table> { return tableFromArrays({ rows: new Float64Array([df.numRows]) }); }
}
`;
  const dir = await project({ 'src/model.ts': model });
  const bundle = await bundleModel(path.join(dir, 'src/model.ts'), { external: [], plugins: [], define: {} }, 'dataframe', dir, path.join(dir, '.pyml', 'tmp'));
  assert.is(bundle.kind, 'dataframe');
  assert.match(bundle.code, /tableFromArrays/);
  // The map names arrow's files from this pyml (not the project, which has no node_modules).
  assert.ok((JSON.parse(bundle.map) as { sources: string[] }).sources.some((s) => s.includes('apache-arrow')));
});

test('without a project copy, @pyml/* resolves to the files this pyml runs (same module, same conditions)', () => {
  const dir = tmpdir();
  const resolved = new PymlPackageResolver(path.join(dir, 'no-such-project')).resolve('@pyml/core');
  assert.is(resolved.from, 'pyml');
  assert.is(resolved.url, import.meta.resolve('@pyml/core'));
  const subpath = new PymlPackageResolver(path.join(dir, 'no-such-project')).resolve('@pyml/plugin-onnx/onnx-schema');
  assert.is(subpath.url, import.meta.resolve('@pyml/plugin-onnx/onnx-schema'));
});

test("a project's own @pyml/core of another major is an error naming both versions and both paths", async () => {
  const fake = JSON.stringify({ name: '@pyml/core', version: '9.0.0', type: 'module', exports: { '.': './index.js' } });
  const dir = await project({ 'pyml.config.ts': TS_CONFIG, 'node_modules/@pyml/core/package.json': fake, 'node_modules/@pyml/core/index.js': 'export const defineConfig = (c) => c;\n' });
  const err = await configError(() => loadConfig(dir));
  assert.match(err.message, `${path.join(dir, 'pyml.config.ts')}:1:`);
  assert.match(err.message, `your project's @pyml/core 9.0.0 (${path.join(dir, 'node_modules/@pyml/core')}) does not match this pyml ${pymlVersion()} (${pymlCoreDir()})`);
  assert.is(err.hint, `install @pyml/core@${compatibilityLine(pymlVersion())} in the project, or remove the project's @pyml packages to use this pyml's own, or use a pyml 9.x`);
  // The model's bundle meets the same check.
  await writeFile(path.join(dir, 'model.ts'), MODEL);
  const fakeContract = JSON.stringify({ name: '@pyml/contract', version: '9.1.0', exports: './index.js' });
  await mkdir(path.join(dir, 'node_modules/@pyml/contract'));
  await writeFile(path.join(dir, 'node_modules/@pyml/contract/package.json'), fakeContract);
  const bundling = await configError(() => bundleModel(path.join(dir, 'model.ts'), { external: [], plugins: [], define: {} }, 'tensor', dir, path.join(dir, '.pyml', 'tmp')));
  assert.match(bundling.message, /your project's @pyml\/contract 9\.1\.0 .* does not match this pyml/);
});

test("a project's own @pyml packages of this release line are used (and 0.x compares 0.minor)", async () => {
  assert.is(compatibilityLine('0.1.0'), '0.1');
  assert.is(compatibilityLine('0.1.7'), '0.1');
  assert.is(compatibilityLine('0.2.0'), '0.2');
  assert.is(compatibilityLine('1.2.0'), '1');
  assert.is(compatibilityLine('1.9.3'), '1');
  const [major, minor] = pymlVersion().split('.');
  const sameLine = major === '0' ? `0.${minor}.99` : `${major}.99.0`;
  const fake = JSON.stringify({ name: '@pyml/core', version: sameLine, type: 'module', exports: { '.': { import: './index.js' } } });
  const dir = await project({
    'pyml.config.ts': "import { defineConfig, marker } from '@pyml/core';\nexport default defineConfig({ name: marker, version: '1.0.0' });\n",
    'node_modules/@pyml/core/package.json': fake,
    'node_modules/@pyml/core/index.js': "export const defineConfig = (c) => c;\nexport const marker = 'from-the-project';\n",
  });
  assert.is((await loadConfig(dir)).name, 'from-the-project');
});

test('an @pyml package neither the project nor pyml has: the error says where it looked', async () => {
  const dir = await project({ 'pyml.config.ts': "import x from '@pyml/plugin-nonexistent';\nexport default { name: 'x', version: '1', plugins: [x()] };\n" });
  const err = await configError(() => loadConfig(dir));
  assert.match(err.message, /pyml\.config\.ts:1:\d+: cannot find @pyml\/plugin-nonexistent: neither your project/);
});

test.run();
