/**
 * `pyml plugin init`: the scaffolded plugin package typechecks against the public types, its own test passes
 * (hooks called directly, then its example project built into an image and predicted with the `pyml` on PATH,
 * here a shim for this checkout's CLI), its package.json makes npm fetch no @pyml/* package, and plugin init never
 * overwrites. (test/install uses such a plugin from a project outside the checkout, with pyml installed.)
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { chmod, readFile, readdir, rm, symlink, writeFile, mkdir } from 'node:fs/promises';
import path from 'node:path';
import { PYML_BIN, REPO, parseJson, pyml, runProcess } from '../helpers/cli.ts';
import { tempDir } from '../helpers/project.ts';

let parent: string;
test.before(async () => {
  parent = await tempDir('pyml-plugin-init-');
  await mkdir(path.join(parent, 'bin'));
  await writeFile(path.join(parent, 'bin', 'pyml'), `#!/bin/sh\nexec '${process.execPath}' '${PYML_BIN}' "$@"\n`);
  await chmod(path.join(parent, 'bin', 'pyml'), 0o755);
});
test.after(async () => { await rm(parent, { recursive: true, force: true }); });

test('plugin init scaffolds a package whose test passes and whose sources typecheck', async () => {
  const dir = path.join(parent, 'pyml-plugin-lin-reg');
  const r = await pyml(['plugin', 'init', dir, '--json']);
  assert.is(r.code, 0, r.stderr);
  const json = parseJson<{ package: string; plugin: string; files: string[] }>(r);
  assert.is(json.package, 'pyml-plugin-lin-reg');
  assert.is(json.plugin, 'lin-reg');
  for (const f of ['package.json', 'README.md', 'src/index.ts', 'src/adapter.ts', 'test/plugin.test.ts', 'example/pyml.config.json']) assert.ok(json.files.includes(f), f);

  const index = await readFile(path.join(dir, 'src', 'index.ts'), 'utf8');
  for (const hook of ['configResolved', 'transformWeights', 'describeWeights', 'defaultModel', 'bundleOptions', 'dependencies', 'runtimeAdapter', 'buildEnd']) {
    assert.match(index, new RegExp(`\\n    (async )?${hook}\\(`), `one ${hook} hook`);
  }
  assert.match(index, /from '@pyml\/core\/types'/);
  assert.not.match(index, /from '@pyml\/core'/, 'only the types module of the core');
  // Entry modules found beside index with its own extension: works from .ts sources and compiled .js alike.
  assert.match(index, /`adapter\$\{extname\(HERE\)\}`/);
  assert.not.match(index, /new URL\('\.\/adapter\.ts'/, 'no hard-coded .ts entry');

  // Nothing in package.json makes npm fetch @pyml/* (in no registry): the peers are optional, no dev dependency names them.
  const pkg = JSON.parse(await readFile(path.join(dir, 'package.json'), 'utf8')) as {
    peerDependencies: Record<string, string>; peerDependenciesMeta: Record<string, { optional?: boolean }>;
    dependencies?: Record<string, string>; devDependencies: Record<string, string>;
  };
  assert.equal(Object.keys(pkg.peerDependencies).sort(), ['@pyml/contract', '@pyml/core']);
  for (const peer of Object.keys(pkg.peerDependencies)) assert.is(pkg.peerDependenciesMeta[peer]?.optional, true, `${peer} is an optional peer`);
  assert.equal(Object.keys({ ...pkg.dependencies, ...pkg.devDependencies }).filter((d) => d.startsWith('@pyml/')), [], 'no @pyml/* dependency');

  // Its test needs tsx (a dev dependency); the checkout's node_modules stands in for `npm install`.
  await symlink(path.join(REPO, 'node_modules'), path.join(dir, 'node_modules'));
  const t = await runProcess(process.execPath, ['--import', 'tsx', '--test', 'test/plugin.test.ts'], { cwd: dir, env: { PATH: `${path.join(parent, 'bin')}${path.delimiter}${process.env.PATH ?? ''}` } });
  assert.is(t.code, 0, `the scaffold's test failed:\n${t.stdout.slice(-3000)}\n${t.stderr.slice(-2000)}`);
  assert.match(t.stdout, /# pass 3/);

  const tsc = await runProcess(process.execPath, [path.join(REPO, 'node_modules', 'typescript', 'bin', 'tsc'), '-p', dir, '--noEmit', '--customConditions', 'source'], { cwd: dir });
  // Only the scaffold's own files are judged here (errors inside pyml's packages belong to their owners).
  const own = tsc.stdout.split('\n').filter((l) => /^(src|test|example)\//.test(l));
  assert.equal(own, [], `the scaffold's sources do not typecheck:\n${tsc.stdout}`);
});

test('plugin init --name with a scope names the plugin without it', async () => {
  const dir = path.join(parent, 'catboost');
  const r = await pyml(['plugin', 'init', dir, '--name', '@acme/pyml-plugin-cat-boost', '--json']);
  assert.is(r.code, 0, r.stderr);
  assert.is(parseJson<{ plugin: string }>(r).plugin, 'cat-boost');
  const index = await readFile(path.join(dir, 'src', 'index.ts'), 'utf8');
  assert.match(index, /const NAME = 'cat-boost';/);
  const readme = await readFile(path.join(dir, 'README.md'), 'utf8');
  assert.match(readme, /import catBoost from '@acme\/pyml-plugin-cat-boost'/);
  assert.match(readme, /"plugins": \["\.\.\/catboost"\]/, 'the README names the plugin by its directory');
  assert.not.match(readme, /npx pyml/);
});

test('plugin init refuses to overwrite and rejects bad usage (exit 2)', async () => {
  const dir = path.join(parent, 'taken');
  await mkdir(path.join(dir, 'src'), { recursive: true });
  await writeFile(path.join(dir, 'src', 'index.ts'), '// mine\n');
  const r = await pyml(['plugin', 'init', dir]);
  assert.is(r.code, 2);
  assert.match(r.stderr, /src\/index\.ts already exists/);
  assert.equal((await readdir(dir)).sort(), ['src']);
  assert.is(await readFile(path.join(dir, 'src', 'index.ts'), 'utf8'), '// mine\n');
  assert.is((await pyml(['plugin'])).code, 2);
  assert.is((await pyml(['plugin', 'publish'])).code, 2);
  assert.is((await pyml(['plugin', 'init', path.join(parent, 'x'), '--name', 'Not A Name'])).code, 2);
});

test.run();
