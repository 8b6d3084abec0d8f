import { build } from 'esbuild';
import { mkdir, rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { randomBytes } from 'node:crypto';
import { ConfigError } from '../errors.ts';

/**
 * Loads a TypeScript config file: esbuild compiles it (imports of packages stay external, so `@pyml/core` and
 * plugins resolve from the project's node_modules), the result is written beside the config and imported.
 */
export async function loadTsConfigFile(file: string): Promise<unknown> {
  let code: string;
  try {
    const result = await build({
      entryPoints: [file], bundle: true, write: false, platform: 'node', format: 'esm', target: 'node20',
      packages: 'external', logLevel: 'silent', sourcemap: 'inline',
    });
    code = result.outputFiles[0]!.text;
  } catch (err) {
    const first = (err as { errors?: { text: string; location?: { line: number; column: number } }[] }).errors?.[0];
    const where = first?.location ? `:${first.location.line}:${first.location.column}` : '';
    throw new ConfigError(`${file}${where}: cannot compile the config: ${first?.text ?? (err as Error).message}`);
  }
  // Written next to the config so bare imports resolve exactly as they would from the config itself.
  const dir = path.join(path.dirname(file), '.pyml');
  await mkdir(dir, { recursive: true });
  const compiled = path.join(dir, `config.${randomBytes(6).toString('hex')}.mjs`);
  await writeFile(compiled, code);
  try {
    const mod = (await import(pathToFileURL(compiled).href)) as { default?: unknown };
    return mod.default;
  } catch (err) {
    throw new ConfigError(`${file}: evaluating the config failed: ${(err as Error).message}`,
      'check the imports in the config; plugins must be installed in the project');
  } finally {
    await rm(compiled, { force: true });
  }
}
