import type { Plugin } from 'esbuild';
import { esbuild } from '../build/esbuild-api.ts';
import { existsSync, statSync } from 'node:fs';
import { copyFile, mkdir, readdir, readFile, rename, rm, symlink, writeFile } from 'node:fs/promises';
import { createHash, randomBytes } from 'node:crypto';
import path from 'node:path';
import { ConfigError } from '../errors.ts';
import { packageRootOf, readPackageJson } from './package-lookup.ts';
import { configErrorIn, isPymlSpecifier, pymlImportsPlugin, pymlVersion, type PymlPackageResolver } from './pyml-package-resolver.ts';

/**
 * Plugin packages written in TypeScript (what `pyml plugin init` makes: `exports` pointing at src/index.ts) cannot
 * be imported by Node 20. Such a package is compiled file by file into `<project>/.pyml/plugins/<name>-<hash>/`,
 * the directory layout kept, so that paths a plugin computes from its own `import.meta.url` (its adapter, its
 * default model, its README) still find their siblings. The package's other files are copied alongside.
 * (Plugins should name those siblings with their own file's extension, as `pyml plugin init`'s template does.)
 */

const TS_SOURCE = /\.(ts|mts|tsx)$/;
const DECLARATION = /\.d\.(ts|mts|cts)$/;

export function isTypeScriptFile(file: string): boolean {
  return TS_SOURCE.test(file) && !DECLARATION.test(file);
}

/**
 * The file to import for `entry`: itself when Node can import it, else its compiled copy in the project's cache.
 * A TypeScript file of the project's own package (`projectPackage`), or of none, is one file, not a package: it is
 * bundled alone (with its relative imports), rather than compiling, and copying, the whole project.
 */
export async function importableEntry(entry: string, resolver: PymlPackageResolver, cacheRoot: string, projectPackage?: string): Promise<string> {
  if (!isTypeScriptFile(entry)) return entry;
  const root = packageRootOf(entry);
  if (!root || root === projectPackage) return bundleFile(entry, resolver, cacheRoot);
  const out = await compilePackage(root, resolver, cacheRoot);
  return path.join(out, outputName(path.relative(root, entry)));
}

/** One TypeScript file and what it imports relatively, bundled into `<cacheRoot>/<name>-<hash>.mjs`; packages stay imports. */
async function bundleFile(entry: string, resolver: PymlPackageResolver, cacheRoot: string): Promise<string> {
  let code: Uint8Array;
  try {
    const result = await esbuild().build({
      entryPoints: [entry], bundle: true, write: false, platform: 'node', format: 'esm', target: 'node20', logLevel: 'silent',
      sourcemap: 'inline', packages: 'external', absWorkingDir: path.dirname(entry), outfile: path.join(cacheRoot, 'plugin.mjs'),
      plugins: [pymlImportsPlugin(resolver, 'absolute')],
    });
    code = result.outputFiles[0]!.contents;
  } catch (err) {
    throw compileError(err, path.dirname(entry), 'cannot compile the plugin file');
  }
  const hash = createHash('sha256').update(`pyml ${pymlVersion()}\0`).update(code).digest('hex').slice(0, 16);
  const target = path.join(cacheRoot, `${path.basename(entry).replace(/\.[^.]+$/, '')}-${hash}.mjs`);
  if (existsSync(target)) return target;
  await mkdir(cacheRoot, { recursive: true });
  const temp = path.join(cacheRoot, `.tmp-${randomBytes(6).toString('hex')}.mjs`);
  await writeFile(temp, code);
  await rename(temp, target);
  return target;
}

/** A ConfigError for a failed esbuild run: the resolver's own error if it failed there, located at the import. */
function compileError(err: unknown, workingDir: string, what: string): ConfigError {
  const first = (err as { errors?: { text: string; location?: { file: string; line: number; column: number } | null }[] }).errors?.[0];
  const where = first?.location ? `${path.resolve(workingDir, first.location.file)}:${first.location.line}:${first.location.column}: ` : `${workingDir}: `;
  const config = configErrorIn(err);
  if (config) return new ConfigError(`${where}${config.message}`, config.hint);
  return new ConfigError(`${where}${what}: ${first?.text ?? (err as Error).message}`);
}

/** The output name of a source file: .ts and .tsx → .js, .mts → .mjs. */
function outputName(relative: string): string {
  return relative.replace(/\.mts$/, '.mjs').replace(/\.tsx?$/, '.js');
}

async function listFiles(root: string): Promise<string[]> {
  const out: string[] = [];
  const walk = async (dir: string): Promise<void> => {
    for (const entry of await readdir(dir, { withFileTypes: true })) {
      // Dependencies and tool state are not the package's sources.
      if (entry.name === 'node_modules' || entry.name.startsWith('.')) continue;
      const full = path.join(dir, entry.name);
      if (entry.isDirectory()) await walk(full);
      else if (entry.isFile()) out.push(path.relative(root, full));
    }
  };
  await walk(root);
  return out.sort();
}

/** Compiles the package at `root` (once per content: the directory is named by a hash of what it holds); returns that directory. */
export async function compilePackage(root: string, resolver: PymlPackageResolver, cacheRoot: string): Promise<string> {
  const files = await listFiles(root);
  const sources = files.filter(isTypeScriptFile);
  const others = files.filter((f) => !isTypeScriptFile(f) && f !== 'package.json');
  const json = readPackageJson(root);
  const name = (json.name ?? path.basename(root)).replace(/^@/, '').replace(/[^a-zA-Z0-9._-]+/g, '+');
  let outputs: { path: string; contents: Uint8Array }[];
  // Nothing is written there, but as a sibling of the final directory it gives the inline source maps the right relative paths.
  const virtualOut = path.join(cacheRoot, `${name}-compiling`);
  try {
    const result = await esbuild().build({
      entryPoints: sources.map((f) => path.join(root, f)), outbase: root, outdir: virtualOut, write: false,
      bundle: true, platform: 'node', format: 'esm', target: 'node20', logLevel: 'silent', sourcemap: 'inline', absWorkingDir: root,
      plugins: [pymlImportsPlugin(resolver, 'absolute'), keepImports(root)],
    });
    outputs = result.outputFiles.map((f) => ({ path: path.relative(virtualOut, f.path), contents: f.contents }));
  } catch (err) {
    throw compileError(err, root, 'cannot compile the plugin package');
  }
  // esbuild names .mts outputs .js; the imports were rewritten to .mjs.
  outputs = outputs.map((o) => ({ ...o, path: sources.includes(o.path.replace(/\.js$/, '.mts')) ? o.path.replace(/\.js$/, '.mjs') : o.path }));
  // Compiled output is ESM whatever the package said.
  const packageJson = `${JSON.stringify({ ...json, type: 'module' }, null, 2)}\n`;
  const hash = createHash('sha256').update(`pyml ${pymlVersion()}\0package.json\0${packageJson}\0`);
  for (const o of outputs) hash.update(`${o.path}\0`).update(o.contents).update('\0');
  for (const f of others) {
    // Big files (a plugin's example weights) are known by size and time, not read on every config load.
    const info = statSync(path.join(root, f));
    hash.update(`${f}\0`).update(info.size > 1 << 20 ? `${info.size} ${info.mtimeMs}` : await readFile(path.join(root, f))).update('\0');
  }
  const target = path.join(cacheRoot, `${name}-${hash.digest('hex').slice(0, 16)}`);
  if (existsSync(target)) return target;

  // Written to a temporary directory, then renamed: a concurrent build or an interrupted one never sees half a package.
  await mkdir(cacheRoot, { recursive: true });
  const temp = path.join(cacheRoot, `.tmp-${randomBytes(6).toString('hex')}`);
  try {
    for (const f of others) {
      await mkdir(path.dirname(path.join(temp, f)), { recursive: true });
      await copyFile(path.join(root, f), path.join(temp, f));
    }
    // After the copies: a compiled file wins over a JavaScript file of the same name.
    for (const o of outputs) await writeOut(path.join(temp, o.path), o.contents);
    await writeOut(path.join(temp, 'package.json'), packageJson);
    // The package's own dependencies (a plugin named by path, with its own node_modules) resolve from the copy too.
    if (existsSync(path.join(root, 'node_modules'))) await symlink(path.join(root, 'node_modules'), path.join(temp, 'node_modules'), 'dir');
    await rename(temp, target);
  } catch (err) {
    await rm(temp, { recursive: true, force: true });
    // Another process renamed the same content into place first.
    if (existsSync(target)) return target;
    throw err;
  }
  return target;
}

async function writeOut(file: string, contents: Uint8Array | string): Promise<void> {
  await mkdir(path.dirname(file), { recursive: true });
  await writeFile(file, contents);
}

/**
 * Every import stays an import (each source becomes one output file): relative ones rewritten to the output's
 * name (./helper.ts, ./helper or ./helper.js → ./helper.js), bare ones left for Node to resolve.
 */
function keepImports(root: string): Plugin {
  return {
    name: 'pyml-keep-imports',
    setup(b) {
      b.onResolve({ filter: /.*/ }, (args) => {
        if (args.kind === 'entry-point') return undefined;
        if (isPymlSpecifier(args.path)) return undefined;
        if (!args.path.startsWith('./') && !args.path.startsWith('../')) return { path: args.path, external: true };
        const file = sourceFile(path.resolve(args.resolveDir, args.path));
        if (!file || path.relative(root, file).startsWith('..')) return { path: args.path, external: true };
        let rel = path.relative(args.resolveDir, isTypeScriptFile(file) ? outputName(file) : file).split(path.sep).join('/');
        if (!rel.startsWith('.')) rel = `./${rel}`;
        return { path: rel, external: true };
      });
    },
  };
}

/** The source file an import names: as written, a .ts for a .js name, or with an extension or /index added. */
export function sourceFile(target: string): string | undefined {
  const candidates = [target];
  if (/\.m?js$/.test(target)) candidates.push(target.replace(/\.js$/, '.ts').replace(/\.mjs$/, '.mts'), target.replace(/\.js$/, '.tsx'));
  for (const ext of ['.ts', '.tsx', '.mts', '.js', '.mjs']) candidates.push(target + ext, path.join(target, `index${ext}`));
  return candidates.find((c) => existsSync(c) && statSync(c).isFile());
}
