import { createHash } from 'node:crypto';
import { mkdirSync, readFileSync, renameSync, statSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { pymlCacheDir } from '@pyml/image';

/**
 * Compiled JavaScript loaded as one file, bundled once per machine. Node 20 loads the ~430 modules behind `pyml batch`
 * (DuckDB's node-api, Apache Arrow, pyml's packages) file by file, resolving and translating each: ~0.45 s of CPU
 * before the first row, against ~0.15 s for the same code as one esbuild bundle. The first run writes the bundle into
 * `cacheDir` beside the list of the files it was made from (path, size, mtime); later runs check those with a stat
 * each and import the bundle, or rebuild it when a file changed (an upgrade, a rebuilt dist/). Native addons and
 * the packages loading them stay outside, required from where they are installed.
 *
 * Where esbuild cannot be loaded or fails, or the cache cannot be written, the entry is imported as it is: the same
 * code, loaded the slow way.
 */
export interface BundledModule<T> {
  module: T;
  /** `bundle`: the cached bundle; `built`: bundled by this call; `modules`: imported file by file. */
  from: 'bundle' | 'built' | 'modules';
  /** Why the bundle was not used (from `modules`). */
  why?: string;
}

interface BundleRecord {
  entry: string;
  inputs: [path: string, size: number, mtimeMs: number][];
}

/** Packages that load native addons (`.node` files found relative to their own directory): never bundled. */
const KEPT_OUTSIDE = /^@duckdb\/node-bindings(?:\/|$)|\.node$/;

export async function bundledImport<T>(entry: string, cacheDir: string): Promise<BundledModule<T>> {
  const key = createHash('sha256').update(entry).digest('hex').slice(0, 16);
  const bundle = join(cacheDir, `${key}.mjs`);
  const record = join(cacheDir, `${key}.json`);
  // The URL names the bundle's version: a process that rebuilt it imports the new one, not the module it has.
  const version = currentVersion(record, entry);
  if (version) {
    try {
      return { module: await import(`${pathToFileURL(bundle).href}?${version}`) as T, from: 'bundle' };
    } catch {
      // Damaged on disk: made again below.
    }
  }
  let why: string;
  try {
    const built = await build(entry, bundle, record);
    return { module: await import(`${pathToFileURL(bundle).href}?${built}`) as T, from: 'built' };
  } catch (error) {
    why = (error as Error).message.split('\n')[0];
  }
  return { module: await import(pathToFileURL(entry).href) as T, from: 'modules', why };
}

/** The bundle's version if it was made from `entry` and every file it read is as it was then. */
function currentVersion(record: string, entry: string): string | undefined {
  let text: string;
  let saved: BundleRecord;
  try {
    text = readFileSync(record, 'utf8');
    saved = JSON.parse(text) as BundleRecord;
  } catch {
    return undefined;
  }
  if (saved.entry !== entry) return undefined;
  for (const [path, size, mtimeMs] of saved.inputs) {
    const s = statSync(path, { throwIfNoEntry: false });
    if (!s || s.size !== size || s.mtimeMs !== mtimeMs) return undefined;
  }
  return versionOf(text);
}

function versionOf(recordText: string): string {
  return createHash('sha256').update(recordText).digest('hex').slice(0, 16);
}

/** Bundles `entry` into `bundle` and lists what it read in `record`; returns the new version. */
async function build(entry: string, bundle: string, record: string): Promise<string> {
  const esbuild = await import('esbuild');
  const base = dirname(entry);
  const result = await esbuild.build({
    entryPoints: [entry], absWorkingDir: base, bundle: true, platform: 'node', format: 'esm', target: 'node20', write: false,
    metafile: true, outfile: bundle, logLevel: 'silent', legalComments: 'none', minifyWhitespace: true, minifySyntax: true,
    // CommonJS inside the bundle (DuckDB's node-api) requires what stays outside, resolved from the entry's place.
    banner: { js: `import { createRequire as __pymlCreateRequire } from 'node:module'; const require = __pymlCreateRequire(${JSON.stringify(entry)});` },
    plugins: [{
      name: 'kept-outside',
      setup(b) {
        b.onResolve({ filter: KEPT_OUTSIDE }, (args) => ({ path: createRequire(join(args.resolveDir || base, 'x.js')).resolve(args.path), external: true }));
      },
    }],
  });
  const inputs: BundleRecord['inputs'] = Object.keys(result.metafile.inputs).map((input) => {
    const path = resolve(base, input);
    const s = statSync(path);
    return [path, s.size, s.mtimeMs];
  });
  mkdirSync(dirname(bundle), { recursive: true });
  const temp = `.${process.pid}.tmp`;
  writeFileSync(bundle + temp, result.outputFiles[0].contents);
  renameSync(bundle + temp, bundle);
  const text = JSON.stringify({ entry, inputs } satisfies BundleRecord);
  writeFileSync(record + temp, text);
  renameSync(record + temp, record);
  return versionOf(text);
}

/**
 * @pyml/batch's local run as `pyml batch` loads it: compiled, as one bundled file cached under
 * `$PYML_CACHE_DIR/code`; from the checkout's TypeScript sources, as they are.
 */
export function importLocalBatch(): Promise<BundledModule<typeof import('./local-batch.ts')>> {
  const here = fileURLToPath(import.meta.url);
  if (!here.endsWith('.js')) return import('./local-batch.ts').then((module) => ({ module, from: 'modules', why: 'running from TypeScript sources' }));
  return bundledImport(join(dirname(here), 'local-batch.js'), join(pymlCacheDir(), 'code'));
}
