/**
 * The import-boundary check behind test/structure/boundaries.test.ts: reads the rules from docs/architecture.md
 * (which package may import which, and through which entry points) and every import of packages/*\/src and
 * plugins/*\/src, and reports each import that breaks a rule. Imports are read with the TypeScript compiler's
 * pre-processor (static and dynamic imports, re-exports, require), plus `resolve('…')` calls and
 * `new URL('…', import.meta.url)`, which reach files without importing them.
 */
import { readdirSync, readFileSync, statSync } from 'node:fs';
import path from 'node:path';
import ts from 'typescript';

/** One package's row of the table in docs/architecture.md. */
export interface PackageRule {
  /** `image`, `plugin-*` (a glob over package keys). */
  key: string;
  mayImport: string[];
  /** `.` for the package itself, else subpaths such as `pyml-format`. */
  entryPoints: string[];
}

/** A package of the workspace: its key (`image`, `plugin-onnx`) and its folder relative to the repo. */
export interface WorkspacePackage {
  key: string;
  dir: string;
  /** The `@pyml/*` names its package.json lists (dependencies, peer or dev): what an installed copy will have. */
  declared?: string[];
}

/** A source file: its path relative to the repo, and its text. */
export interface SourceFile {
  file: string;
  text: string;
}

export type Rule = 'layering' | 'entry-point' | 'path' | 'cycle' | 'undeclared';

export interface Violation {
  file: string;
  /** The specifier as written: `@pyml/runtime/oip/codec`, `../../cli/src/output.ts`. */
  specifier: string;
  rule: Rule;
  message: string;
}

const SCOPE = '@pyml/';

/** The rows of the `## Packages` table: | `key` | owns | may import | entry points |. */
export function parseRules(markdown: string): PackageRule[] {
  const section = markdown.split(/^## Packages$/m)[1]?.split(/^## /m)[0];
  if (!section) throw new Error('docs/architecture.md has no "## Packages" section');
  const names = (cell: string) => [...cell.matchAll(/`([^`]+)`/g)].map((m) => m[1]!);
  return section.split('\n').filter((line) => line.startsWith('| `')).map((line) => {
    const cells = line.split(' | ').map((c) => c.replace(/^\|\s*|\s*\|$/g, '').trim());
    if (cells.length !== 4) throw new Error(`docs/architecture.md: a row of the packages table has ${cells.length} cells, not 4: ${line}`);
    return { key: names(cells[0]!)[0]!, mayImport: names(cells[2]!), entryPoints: names(cells[3]!) };
  });
}

/** packages/* and plugins/*, keyed by their npm name without the scope. */
export function workspacePackages(root: string): WorkspacePackage[] {
  const found: WorkspacePackage[] = [];
  for (const top of ['packages', 'plugins']) {
    for (const name of readdirSync(path.join(root, top)).sort()) {
      const manifest = path.join(root, top, name, 'package.json');
      if (!statSync(manifest, { throwIfNoEntry: false })?.isFile()) continue;
      const json = JSON.parse(readFileSync(manifest, 'utf8')) as { name: string } & Record<'dependencies' | 'peerDependencies' | 'devDependencies', Record<string, string> | undefined>;
      const declared = [json.dependencies, json.peerDependencies, json.devDependencies].flatMap((deps) => Object.keys(deps ?? {}));
      if (json.name.startsWith(SCOPE)) found.push({ key: json.name.slice(SCOPE.length), dir: `${top}/${name}`, declared });
    }
  }
  return found;
}

/** Every .ts file under each package's src/. */
export function sourceFiles(root: string, packages: WorkspacePackage[]): SourceFile[] {
  const files: SourceFile[] = [];
  const walk = (dir: string) => {
    for (const entry of readdirSync(path.join(root, dir), { withFileTypes: true })) {
      const rel = `${dir}/${entry.name}`;
      if (entry.isDirectory()) walk(rel);
      else if (entry.name.endsWith('.ts')) files.push({ file: rel, text: readFileSync(path.join(root, rel), 'utf8') });
    }
  };
  for (const p of packages) if (statSync(path.join(root, p.dir, 'src'), { throwIfNoEntry: false })?.isDirectory()) walk(`${p.dir}/src`);
  return files;
}

/** What a file names: module specifiers, and relative paths it reaches through resolve() or new URL(). */
export function referencesOf(text: string): { specifier: string; byPath: boolean }[] {
  const refs = ts.preProcessFile(text, true, true).importedFiles.map((f) => ({ specifier: f.fileName, byPath: false }));
  for (const m of text.matchAll(/\bresolve\(\s*['"]([^'"]+)['"]\s*\)/g)) refs.push({ specifier: m[1]!, byPath: false });
  for (const m of text.matchAll(/new URL\(\s*['"]([^'"]+)['"]\s*,\s*import\.meta\.url\s*\)/g)) refs.push({ specifier: m[1]!, byPath: true });
  return refs;
}

const matches = (pattern: string, key: string) => (pattern.endsWith('*') ? key.startsWith(pattern.slice(0, -1)) : pattern === key);

export function checkBoundaries(files: SourceFile[], packages: WorkspacePackage[], rules: PackageRule[]): Violation[] {
  const ruleOf = (key: string) => rules.find((r) => matches(r.key, key));
  const packageOfFile = (file: string) => packages.find((p) => file === p.dir || file.startsWith(`${p.dir}/`));
  const violations: Violation[] = [];
  const edges: { from: string; to: string; file: string; specifier: string }[] = [];

  for (const { file, text } of files) {
    const own = packageOfFile(file);
    if (!own) continue;
    const ownRule = ruleOf(own.key);
    for (const { specifier, byPath } of referencesOf(text)) {
      if (specifier.startsWith(SCOPE)) {
        const [name, ...rest] = specifier.slice(SCOPE.length).split('/');
        const target = packages.find((p) => p.key === name);
        if (!target || target.key === own.key) continue;
        edges.push({ from: own.key, to: target.key, file, specifier });
        // Inside the checkout every workspace resolves; installed from npm, only what package.json lists does.
        if (own.declared && !own.declared.includes(SCOPE + target.key)) {
          violations.push({ file, specifier, rule: 'undeclared', message: `${own.key}'s package.json does not list ${SCOPE}${target.key}` });
        }
        if (!ownRule?.mayImport.some((allowed) => matches(allowed, target.key))) {
          violations.push({ file, specifier, rule: 'layering', message: `${own.key} may not import ${target.key} (docs/architecture.md)` });
        }
        const entry = rest.length ? rest.join('/') : '.';
        if (!ruleOf(target.key)?.entryPoints.includes(entry)) {
          violations.push({ file, specifier, rule: 'entry-point', message: `'${entry}' is not an entry point of ${target.key}: it reaches into its src` });
        }
      } else if (specifier.startsWith('.') || byPath) {
        const reached = path.posix.normalize(path.posix.join(path.posix.dirname(file), specifier));
        const target = packageOfFile(reached);
        if (!target || target.key === own.key) continue;
        edges.push({ from: own.key, to: target.key, file, specifier });
        violations.push({ file, specifier, rule: 'path', message: `reaches ${reached} of ${target.key} by path, not through the package` });
      }
    }
  }

  // Every import between two packages of one strongly connected component is part of a cycle.
  const component = stronglyConnected(packages.map((p) => p.key), edges);
  for (const e of edges) {
    if (component.get(e.from) === component.get(e.to)) {
      const members = [...component].filter(([, c]) => c === component.get(e.from)).map(([k]) => k).sort();
      violations.push({ file: e.file, specifier: e.specifier, rule: 'cycle', message: `${e.from} -> ${e.to} closes a cycle among ${members.join(', ')}` });
    }
  }
  return violations;
}

/** Tarjan's algorithm: each node's component id; nodes on no cycle get a component of their own. */
function stronglyConnected(nodes: string[], edges: { from: string; to: string }[]): Map<string, number> {
  const next = new Map(nodes.map((n) => [n, [...new Set(edges.filter((e) => e.from === n).map((e) => e.to))]]));
  const index = new Map<string, number>();
  const low = new Map<string, number>();
  const component = new Map<string, number>();
  const stack: string[] = [];
  let counter = 0;
  let components = 0;
  const visit = (n: string) => {
    index.set(n, counter);
    low.set(n, counter++);
    stack.push(n);
    for (const m of next.get(n) ?? []) {
      if (!index.has(m)) { visit(m); low.set(n, Math.min(low.get(n)!, low.get(m)!)); }
      else if (stack.includes(m)) low.set(n, Math.min(low.get(n)!, index.get(m)!));
    }
    if (low.get(n) === index.get(n)) {
      let m: string;
      do { m = stack.pop()!; component.set(m, components); } while (m !== n);
      components++;
    }
  };
  for (const n of nodes) if (!index.has(n)) visit(n);
  return component;
}

/** An exception the allowlist knows about: one import of one file. */
export interface KnownViolation {
  file: string;
  specifier: string;
}

/** Violations the allowlist does not cover, and allowlist entries that no longer match any violation. */
export function againstAllowlist(violations: Violation[], known: KnownViolation[]): { unexpected: Violation[]; stale: KnownViolation[] } {
  const isKnown = (v: { file: string; specifier: string }) => known.some((k) => k.file === v.file && k.specifier === v.specifier);
  return {
    unexpected: violations.filter((v) => !isKnown(v)),
    stale: known.filter((k) => !violations.some((v) => v.file === k.file && v.specifier === k.specifier)),
  };
}
