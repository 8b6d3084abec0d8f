import { build } from 'esbuild';
import { createHash } from 'node:crypto';
import { mkdir, readFile, rename, stat, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { createRequire } from 'node:module';
import { formatEsbuildError } from './bundle-model.ts';

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
export async function bundleForImage(entry: string, external: string[], cacheDir: string): Promise<string> {
  const keyFile = path.join(cacheDir, `${createHash('sha256').update(`${entry}\0${external.join(',')}`).digest('hex').slice(0, 24)}.json`);
  const cached = await readFile(keyFile, 'utf8').then((t) => JSON.parse(t) as { inputs: Record<string, string>; code: string }).catch(() => undefined);
  if (cached && (await inputsUnchanged(cached.inputs))) return cached.code;
  let code: string;
  let inputs: Record<string, string> = {};
  try {
    const result = await build({
      entryPoints: [entry], bundle: true, write: false, platform: 'node', format: 'esm', target: 'node20',
      external, conditions: CONDITIONS, logLevel: 'silent', metafile: true, legalComments: 'none', banner: { js: BANNER },
      minifySyntax: true, minifyWhitespace: true, absWorkingDir: path.dirname(entry),
    });
    code = result.outputFiles[0]!.text;
    for (const input of Object.keys(result.metafile.inputs)) {
      const abs = path.resolve(path.dirname(entry), input);
      inputs[abs] = await statKey(abs);
    }
  } catch (err) {
    throw formatEsbuildError(err, `bundling ${path.basename(entry)} for the image`, path.dirname(entry));
  }
  await mkdir(cacheDir, { recursive: true });
  const tmp = `${keyFile}.${process.pid}.tmp`;
  await writeFile(tmp, JSON.stringify({ inputs, code }));
  await rename(tmp, keyFile);
  return code;
}

export function bundleRuntime(cacheDir: string): Promise<string> {
  return bundleForImage(RUNTIME_ENTRY, [], cacheDir);
}

async function statKey(file: string): Promise<string> {
  const s = await stat(file).catch(() => undefined);
  return s ? `${s.size}:${s.mtimeMs}:${s.ino}` : 'missing';
}

async function inputsUnchanged(inputs: Record<string, string>): Promise<boolean> {
  const checks = await Promise.all(Object.entries(inputs).map(async ([file, key]) => (await statKey(file)) === key));
  return checks.every(Boolean);
}
