import { esbuild, esbuildVersion } from './esbuild-api.ts';
import { createHash } from 'node:crypto';
import path from 'node:path';
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';
import { formatEsbuildError } from './bundle-model.ts';
import { cachedBundle } from './bundle-cache.ts';
import { BUNDLED_PACKAGES_FILE, bundledPackages, type BundledPackage } from './bundled-packages.ts';

/** A module bundled for the image, and the npm packages esbuild put into it. */
export interface ImageBundle {
  code: string;
  packages: BundledPackage[];
}

const THIS_FILE = fileURLToPath(import.meta.url);

// Resolved through the package (not a path into its folder), so the runtime stays a dependency like any other.
const RUNTIME_ENTRY = createRequire(import.meta.url).resolve('@pyml/runtime/entrypoint');

// From pyml's checkout, @pyml/* packages are bundled from their sources (the `source` export condition); installed, from dist/.
const CONDITIONS = import.meta.url.endsWith('.ts') ? ['source'] : [];

const BANNER = "import { createRequire as __pymlCreateRequire } from 'node:module'; const require = __pymlCreateRequire(import.meta.url);";

/**
 * Bundles a module that runs inside the image (the entrypoint, a plugin's adapter) into one ESM file. The result is
 * cached under `cacheDir` by the stats of every input esbuild read, so a rebuild with unchanged sources costs a few
 * stat calls instead of a bundle.
 */
export async function bundleForImage(entry: string, external: string[], cacheDir: string): Promise<ImageBundle> {
  // `with-packages`: entries cached before bundles listed their packages hold a bare string; they are not reused.
  const keyFile = path.join(cacheDir, `${createHash('sha256').update(`${entry}\0${external.join(',')}\0${esbuildVersion()}\0with-packages`).digest('hex').slice(0, 24)}.json`);
  return cachedBundle(keyFile, async () => {
    try {
      const result = await esbuild().build({
        entryPoints: [entry], bundle: true, write: false, platform: 'node', format: 'esm', target: 'node20',
        external, conditions: CONDITIONS, logLevel: 'silent', metafile: true, legalComments: 'none', banner: { js: BANNER },
        minifySyntax: true, minifyWhitespace: true, absWorkingDir: path.dirname(entry),
      });
      const read = Object.keys(result.metafile.inputs).map((input) => path.resolve(path.dirname(entry), input));
      return { value: { code: result.outputFiles[0]!.text, packages: bundledPackages(read) }, inputs: [THIS_FILE, BUNDLED_PACKAGES_FILE, ...read] };
    } catch (err) {
      throw formatEsbuildError(err, `bundling ${path.basename(entry)} for the image`, path.dirname(entry));
    }
  });
}

export function bundleRuntime(cacheDir: string): Promise<ImageBundle> {
  return bundleForImage(RUNTIME_ENTRY, [], cacheDir);
}
