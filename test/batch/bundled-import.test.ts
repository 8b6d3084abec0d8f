/**
 * bundledImport: compiled JavaScript loaded as one cached esbuild bundle (what `pyml batch` does with its local run
 * when it runs compiled), made again when a file it was made from changes, with native-addon packages left outside.
 */
import { mkdtemp, mkdir, readFile, rm, utimes, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { bundledImport } from '../../packages/batch/src/bundled-import.ts';

interface Answer { answer: number; native: string }

/** A compiled entry importing a CommonJS package and a package named like DuckDB's native bindings. */
async function project(): Promise<{ dir: string; entry: string; cache: string }> {
  const dir = await mkdtemp(join(tmpdir(), 'pyml-bundled-import-'));
  await mkdir(join(dir, 'node_modules/dep'), { recursive: true });
  await writeFile(join(dir, 'node_modules/dep/package.json'), JSON.stringify({ name: 'dep', main: 'index.js' }));
  await writeFile(join(dir, 'node_modules/dep/index.js'), 'module.exports = { value: 41 };\n');
  await mkdir(join(dir, 'node_modules/@duckdb/node-bindings'), { recursive: true });
  await writeFile(join(dir, 'node_modules/@duckdb/node-bindings/package.json'), JSON.stringify({ name: '@duckdb/node-bindings', main: 'duckdb.js' }));
  await writeFile(join(dir, 'node_modules/@duckdb/node-bindings/duckdb.js'), 'module.exports = { where: __filename };\n');
  const entry = join(dir, 'entry.js');
  await writeFile(join(dir, 'package.json'), JSON.stringify({ type: 'module' }));
  await writeFile(entry, "import dep from 'dep';\nimport bindings from '@duckdb/node-bindings';\nexport const answer = dep.value + 1;\nexport const native = bindings.where;\n");
  return { dir, entry, cache: join(dir, 'cache') };
}

test('the first import bundles the entry into the cache; the next ones load that one file', async () => {
  const { dir, entry, cache } = await project();
  try {
    const first = await bundledImport<Answer>(entry, cache);
    assert.is(first.from, 'built', first.why);
    assert.is(first.module.answer, 42);
    // The native package ran from where it is installed, not from a copy inside the bundle.
    assert.is(first.module.native, join(dir, 'node_modules/@duckdb/node-bindings/duckdb.js'));
    const again = await bundledImport<Answer>(entry, cache);
    assert.is(again.from, 'bundle');
    assert.is(again.module.answer, 42);
    const { readdir } = await import('node:fs/promises');
    const bundle = (await readdir(cache)).find((f) => f.endsWith('.mjs'))!;
    const text = await readFile(join(cache, bundle), 'utf8');
    assert.ok(text.includes('value: 41') || text.includes('value:41'), 'the CommonJS package is inside the bundle');
    assert.not.ok(/from\s*["']dep["']/.test(text), 'the bundle does not import the package by name');
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

test('a changed input (size or mtime) makes the bundle again, and this process imports the new one', async () => {
  const { dir, entry, cache } = await project();
  try {
    assert.is((await bundledImport<Answer>(entry, cache)).module.answer, 42);
    await writeFile(join(dir, 'node_modules/dep/index.js'), 'module.exports = { value: 1 };\n');
    const changed = await bundledImport<Answer>(entry, cache);
    assert.is(changed.from, 'built');
    assert.is(changed.module.answer, 2);
    // Same size, new mtime: made again too.
    await writeFile(join(dir, 'node_modules/dep/index.js'), 'module.exports = { value: 5 };\n');
    const later = new Date(Date.now() + 5000);
    await utimes(join(dir, 'node_modules/dep/index.js'), later, later);
    const touched = await bundledImport<Answer>(entry, cache);
    assert.is(touched.from, 'built');
    assert.is(touched.module.answer, 6);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

test('where the bundle cannot be written, the entry is imported file by file, and the answer says why', async () => {
  const { dir, entry, cache } = await project();
  try {
    // The cache directory's path is taken by a file: nothing can be written under it.
    await writeFile(cache, 'not a directory');
    const loaded = await bundledImport<Answer>(entry, cache);
    assert.is(loaded.from, 'modules');
    assert.match(loaded.why ?? '', /ENOTDIR|EEXIST/);
    assert.is(loaded.module.answer, 42);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

test.run();
