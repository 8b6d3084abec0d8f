/**
 * The import boundaries of docs/architecture.md, checked on every import of packages/*\/src and plugins/*\/src:
 * layering (who may import whom), entry points (no reaching into another package's src), no file paths into
 * another package, no cycles between packages. Known exceptions are listed below, file by file.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import {
  againstAllowlist, checkBoundaries, parseRules, sourceFiles, workspacePackages, type KnownViolation, type SourceFile, type Violation,
} from './import-boundaries.ts';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const RULES = parseRules(readFileSync(path.join(ROOT, 'docs/architecture.md'), 'utf8'));
const PACKAGES = workspacePackages(ROOT);

/**
 * Imports that break the rules today. Each waits for a change in the file it names (or in the package it
 * imports); remove its line when the import goes: a line that matches nothing fails this test.
 */
const KNOWN: KnownViolation[] = [];

const describe = (vs: { file: string; specifier: string; message?: string }[]) =>
  vs.map((v) => `  ${v.file}: ${v.specifier}${v.message ? ` (${v.message})` : ''}`).join('\n');

test('every import keeps to docs/architecture.md, but for the known exceptions', () => {
  const violations = checkBoundaries(sourceFiles(ROOT, PACKAGES), PACKAGES, RULES);
  const { unexpected, stale } = againstAllowlist(violations, KNOWN);
  assert.ok(unexpected.length === 0, `imports against docs/architecture.md:\n${describe(unexpected)}`);
  assert.ok(stale.length === 0, `these known exceptions are gone: remove them from KNOWN in test/structure/boundaries.test.ts:\n${describe(stale)}`);
});

test('the packages table covers every package of the workspace', () => {
  const uncovered = PACKAGES.filter((p) => !RULES.some((r) => (r.key.endsWith('*') ? p.key.startsWith(r.key.slice(0, -1)) : r.key === p.key)));
  assert.equal(uncovered.map((p) => p.key), []);
});

test('each package.json exports its entry points and nothing else (a glob row: some of them)', () => {
  const wrong: string[] = [];
  for (const p of PACKAGES) {
    const rule = RULES.find((r) => (r.key.endsWith('*') ? p.key.startsWith(r.key.slice(0, -1)) : r.key === p.key));
    if (!rule) continue;
    const json = JSON.parse(readFileSync(path.join(ROOT, p.dir, 'package.json'), 'utf8')) as { exports?: Record<string, string> };
    const exported = Object.keys(json.exports ?? {}).map((k) => (k === '.' ? '.' : k.replace(/^\.\//, ''))).sort();
    const listed = [...rule.entryPoints].sort();
    const ok = rule.key.endsWith('*') ? exported.every((e) => listed.includes(e)) : exported.join() === listed.join();
    if (!ok) wrong.push(`${p.dir}/package.json exports ${exported.join(', ')}; docs/architecture.md lists ${listed.join(', ')}`);
  }
  assert.equal(wrong, []);
});

test('each package.json is shaped for release: files ship dist/, every entry point has source, types and default', () => {
  const wrong: string[] = [];
  for (const p of PACKAGES) {
    const json = JSON.parse(readFileSync(path.join(ROOT, p.dir, 'package.json'), 'utf8')) as {
      private?: boolean; files?: string[]; bin?: Record<string, string>; exports?: Record<string, unknown>;
    };
    if (json.private) wrong.push(`${p.dir}/package.json: private (npm pack would pack it, npm publish would refuse it)`);
    if (!json.files?.includes('dist')) wrong.push(`${p.dir}/package.json: files must list dist (the compiled JavaScript)`);
    for (const target of Object.values(json.bin ?? {})) {
      if (!json.files?.some((f) => target.replace(/^\.\//, '').startsWith(`${f}/`))) wrong.push(`${p.dir}/package.json: bin ${target} is not under files`);
    }
    for (const [key, value] of Object.entries(json.exports ?? {})) {
      const v = value as Record<string, string>;
      const stem = /^\.\/src\/(.+)\.ts$/.exec(v.source ?? '')?.[1];
      if (!stem || !existsSync(path.join(ROOT, p.dir, v.source!))) { wrong.push(`${p.dir} ${key}: source must be an existing ./src/*.ts, got ${JSON.stringify(v.source)}`); continue; }
      const expected = { source: v.source, types: `./dist/${stem}.d.ts`, default: `./dist/${stem}.js` };
      if (JSON.stringify(v) !== JSON.stringify(expected)) wrong.push(`${p.dir} ${key}: expected ${JSON.stringify(expected)} (in that order: source first, default last), got ${JSON.stringify(v)}`);
    }
  }
  assert.equal(wrong, []);
});

// The check itself, on a made-up workspace: each kind of violation is found, and a known one is let through.
const SYNTHETIC_RULES = parseRules(`## Packages

| package | owns | may import | entry points |
| --- | --- | --- | --- |
| \`low\` | the bottom | — | \`.\`, \`public\` |
| \`high\` | the top | \`low\` | \`.\` |
| \`plugin-*\` | plugins | \`low\` | \`.\` |
`);
const SYNTHETIC_PACKAGES = [
  { key: 'low', dir: 'packages/low' }, { key: 'high', dir: 'packages/high' }, { key: 'plugin-a', dir: 'plugins/a' },
];
const check = (files: SourceFile[]): Violation[] => checkBoundaries(files, SYNTHETIC_PACKAGES, SYNTHETIC_RULES);

test('the check accepts imports through entry points, down the layers', () => {
  assert.equal(check([
    { file: 'packages/high/src/a.ts', text: "import { x } from '@pyml/low';\nimport type { Y } from '@pyml/low/public';\nimport { z } from './z.ts';" },
    { file: 'plugins/a/src/index.ts', text: "export { x } from '@pyml/low';\nconst m = await import('node:fs');" },
  ]), []);
});

test('the check finds a deep import into another package\'s src', () => {
  const found = check([{ file: 'packages/high/src/a.ts', text: "import { internal } from '@pyml/low/internal-thing';" }]);
  assert.equal(found.map((v) => [v.rule, v.specifier]), [['entry-point', '@pyml/low/internal-thing']]);
});

test('the check finds an arrow against the layering, and the cycle it closes', () => {
  const found = check([
    { file: 'packages/high/src/a.ts', text: "import { x } from '@pyml/low';" },
    { file: 'packages/low/src/b.ts', text: "const { y } = await import('@pyml/high');" },
  ]);
  assert.equal(found.filter((v) => v.rule === 'layering').map((v) => v.file), ['packages/low/src/b.ts']);
  assert.equal(found.filter((v) => v.rule === 'cycle').map((v) => v.file).sort(), ['packages/high/src/a.ts', 'packages/low/src/b.ts']);
});

test('the check finds another package reached by a file URL, a relative path or a resolve()', () => {
  const found = check([{
    file: 'packages/low/src/bundle.ts',
    text: [
      "const entry = fileURLToPath(new URL('../../high/src/main.ts', import.meta.url));",
      "import { helper } from '../../high/src/helper.ts';",
      "const same = new URL('./own-file.ts', import.meta.url);",
      "const other = createRequire(import.meta.url).resolve('@pyml/high/secret');",
    ].join('\n'),
  }]);
  assert.equal(found.filter((v) => v.rule === 'path').map((v) => v.specifier), ['../../high/src/helper.ts', '../../high/src/main.ts']);
  assert.ok(found.some((v) => v.rule === 'entry-point' && v.specifier === '@pyml/high/secret'));
  assert.ok(found.some((v) => v.rule === 'layering' && v.specifier === '@pyml/high/secret'));
  assert.ok(found.some((v) => v.rule === 'cycle') === false, 'one direction only: no cycle');
});

test('the check finds an import of a package that package.json does not list', () => {
  const packages = SYNTHETIC_PACKAGES.map((p) => (p.key === 'high' ? { ...p, declared: ['@pyml/other'] } : p));
  const found = checkBoundaries([{ file: 'packages/high/src/a.ts', text: "import { x } from '@pyml/low';" }], packages, SYNTHETIC_RULES);
  assert.equal(found.map((v) => [v.rule, v.specifier]), [['undeclared', '@pyml/low']]);
});

test('the allowlist lets a known violation through, fails on a new one, and reports entries that match nothing', () => {
  const found = check([
    { file: 'packages/high/src/a.ts', text: "import { old } from '@pyml/low/old-internal';\nimport { fresh } from '@pyml/low/new-internal';" },
  ]);
  const { unexpected, stale } = againstAllowlist(found, [
    { file: 'packages/high/src/a.ts', specifier: '@pyml/low/old-internal' },
    { file: 'packages/high/src/gone.ts', specifier: '@pyml/low/old-internal' },
  ]);
  assert.equal(unexpected.map((v) => v.specifier), ['@pyml/low/new-internal']);
  assert.equal(stale.map((k) => k.file), ['packages/high/src/gone.ts']);
});

test.run();
