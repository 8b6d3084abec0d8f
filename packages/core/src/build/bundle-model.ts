import type { Metafile } from 'esbuild';
import { esbuild, esbuildVersion } from './esbuild-api.ts';
import { createHash } from 'node:crypto';
import { mkdir, rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { randomBytes } from 'node:crypto';
import { contractKindOf, type ContractKind } from '@pyml/contract';
import { BuildError, ConfigError } from '../errors.ts';
import { configErrorIn, pymlImportsPlugin, PymlPackageResolver } from '../config/pyml-package-resolver.ts';
import type { BundleOptions } from '../types.ts';
import { stableSourceMap } from './stable-source-map.ts';
import { cachedBundle } from './bundle-cache.ts';
import { BUNDLED_PACKAGES_FILE, bundledPackages, type BundledPackage } from './bundled-packages.ts';

const THIS_FILE = fileURLToPath(import.meta.url);

export interface ModelBundle {
  code: string;
  map: string;
  kind: ContractKind;
  /** The npm packages esbuild put into the bundle (for the image's dependency manifest). */
  packages: BundledPackage[];
}

/** esbuild errors carry locations: keep them in the message so the user lands on the line. */
export function formatEsbuildError(err: unknown, what: string, workingDir: string): BuildError {
  const errors = (err as { errors?: { text: string; location?: { file: string; line: number; column: number } | null }[] }).errors;
  if (!errors?.length) return new BuildError(`${what}: ${(err as Error).message}`);
  return new BuildError(errors.map((e) => `${e.location ? `${path.resolve(workingDir, e.location.file)}:${e.location.line}:${e.location.column}: ` : ''}${what}: ${e.text}`).join('\n'));
}

/**
 * Bundles the model module into one ESM file (platform node, sourcemap), leaving plugin externals to the image's
 * node_modules, then loads it once to check that its default export is a contract class of the declared kind.
 * With `cacheDir`, a bundle whose input files are all unchanged (by their stats) is reused without esbuild.
 */
export async function bundleModel(entry: string, options: BundleOptions, expectedKind: ContractKind, projectRoot: string, scratchDir: string, cacheDir?: string): Promise<ModelBundle> {
  // esbuild plugins are code: what they would produce cannot be keyed, so a build with any is never cached.
  const bundle = cacheDir && options.plugins.length === 0
    ? await cachedBundle(path.join(cacheDir, `model-${modelBundleKey(entry, options, projectRoot)}.json`), () => bundleAndCheck(entry, options, projectRoot, scratchDir))
    : (await bundleAndCheck(entry, options, projectRoot, scratchDir)).value;
  if (bundle.kind !== expectedKind) {
    throw new BuildError(`${entry}: the default export is a ${bundle.kind === 'tensor' ? 'TensorModel' : 'DataFrameModel'} but the config says kind: '${expectedKind}'`,
      `set kind: '${bundle.kind}' in the config, or extend ${expectedKind === 'tensor' ? 'TensorModel' : 'DataFrameModel'}`);
  }
  return bundle;
}

/** What else decides the bundle besides its input files: where it is, the options, this bundler and esbuild. */
function modelBundleKey(entry: string, options: BundleOptions, projectRoot: string): string {
  return createHash('sha256').update(JSON.stringify([entry, projectRoot, options.external, options.define, esbuildVersion(), THIS_FILE])).digest('hex').slice(0, 24);
}

/** The bundle, its kind (checked by loading it once) and every file esbuild read for it. */
async function bundleAndCheck(entry: string, options: BundleOptions, projectRoot: string, scratchDir: string): Promise<{ value: ModelBundle; inputs: string[] }> {
  let outputs: { path: string; text: string }[];
  let metafile: Metafile;
  try {
    const result = await esbuild().build({
      entryPoints: [entry], bundle: true, write: false, platform: 'node', format: 'esm', target: 'node20',
      sourcemap: 'external', sourcesContent: true, outfile: 'model.mjs', external: options.external,
      // @pyml/* (the contract) from the project when it has them, else from this pyml: a project needs no npm install.
      plugins: [...options.plugins, pymlImportsPlugin(new PymlPackageResolver(projectRoot), 'bundle')], define: options.define, logLevel: 'silent', metafile: true, legalComments: 'none',
      // No path comments in the code (they would name this checkout); the source map carries the names instead.
      minifyWhitespace: true, absWorkingDir: path.dirname(entry),
      // Bundled CommonJS may call require(): give the ESM output one.
      banner: { js: "import { createRequire as __pymlCreateRequire } from 'node:module'; const require = __pymlCreateRequire(import.meta.url);" },
    });
    outputs = result.outputFiles;
    metafile = result.metafile;
  } catch (err) {
    const config = configErrorIn(err);
    if (config) throw new ConfigError(`${entry}: ${config.message}`, config.hint);
    throw formatEsbuildError(err, 'bundling the model', path.dirname(entry));
  }
  const code = outputs.find((o) => o.path.endsWith('.mjs'))!.text;
  const map = stableSourceMap(outputs.find((o) => o.path.endsWith('.map'))?.text ?? '{}', path.dirname(entry), projectRoot);
  const exportsOf = Object.values(metafile.outputs).find((o) => o.entryPoint)?.exports ?? [];
  if (!exportsOf.includes('default')) {
    throw new BuildError(`${entry}: the model module has no default export`,
      'default-export your model class: `export default class MyModel extends TensorModel { ... }`');
  }
  const kind = await loadContractKind(code, entry, scratchDir);
  // The bundler's own file is an input too: a change to how pyml bundles must not reuse an old bundle.
  const read = Object.keys(metafile.inputs).map((input) => path.resolve(path.dirname(entry), input));
  const inputs = [THIS_FILE, BUNDLED_PACKAGES_FILE, ...read];
  return { value: { code, map, kind, packages: bundledPackages(read, projectRoot) }, inputs };
}

async function loadContractKind(code: string, entry: string, scratchDir: string): Promise<ContractKind> {
  // Written inside the project so externals (onnxruntime-node, ...) resolve from its node_modules.
  await mkdir(scratchDir, { recursive: true });
  const file = path.join(scratchDir, `model-check.${randomBytes(6).toString('hex')}.mjs`);
  await writeFile(file, code);
  let mod: { default?: unknown };
  try {
    mod = (await import(pathToFileURL(file).href)) as { default?: unknown };
  } catch (err) {
    throw new BuildError(`${entry}: loading the model module failed: ${(err as Error).message}`);
  } finally {
    await rm(file, { force: true });
  }
  const kind = contractKindOf(mod.default);
  if (!kind) {
    throw new BuildError(`${entry}: the default export is not a model class`,
      "default-export a class that extends TensorModel or DataFrameModel from '@pyml/contract'");
  }
  return kind;
}
