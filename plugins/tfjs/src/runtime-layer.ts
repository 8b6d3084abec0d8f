/**
 * The TF.js dependency layer. The JavaScript of tfjs-core/-layers/-converter and the cpu/wasm backends is bundled
 * into the adapter module, so the layer holds only what a bundle cannot carry: the WASM backend's binaries
 * (plain and SIMD; threads are disabled) with the package.json that names their version. Every bundled package
 * is still listed in the deps manifest with its version, licence and lockfile integrity.
 */
import { createRequire } from 'node:module';
import { existsSync, readFileSync, realpathSync } from 'node:fs';
import { basename, dirname, join, relative, sep } from 'node:path';
import type { DependencyEntry, DependencyLayer, Platform } from '@pyml/core/types';

export const IMAGE_NODE_MODULES = '/opt/pyml/node_modules';
/** Packages bundled into the adapter (the deps manifest lists them). */
export const BUNDLED = ['@tensorflow/tfjs-core', '@tensorflow/tfjs-layers', '@tensorflow/tfjs-converter', '@tensorflow/tfjs-backend-cpu', '@tensorflow/tfjs-backend-wasm'];
const WASM_FILES = ['dist/tfjs-backend-wasm.wasm', 'dist/tfjs-backend-wasm-simd.wasm'];

interface PackageJson { name: string; version: string; license?: string }

function packageDir(name: string): string {
  const require = createRequire(import.meta.url);
  // Some tfjs packages hide package.json behind exports: resolve the entry and walk up to the package root.
  let dir = dirname(require.resolve(name));
  while (!existsSync(join(dir, 'package.json')) || (JSON.parse(readFileSync(join(dir, 'package.json'), 'utf8')) as PackageJson).name !== name) {
    if (dir === dirname(dir)) throw new Error(`tfjs: cannot find the package directory of ${name}`);
    dir = dirname(dir);
  }
  return realpathSync(dir);
}

function lockfileIntegrity(pkgDir: string): string | undefined {
  for (let dir = dirname(pkgDir); dir !== dirname(dir); dir = dirname(dir)) {
    if (basename(dir) !== 'node_modules') continue;
    const lock = join(dirname(dir), 'package-lock.json');
    if (!existsSync(lock)) continue;
    const packages = (JSON.parse(readFileSync(lock, 'utf8')) as { packages?: Record<string, { integrity?: string }> }).packages ?? {};
    return packages[relative(dirname(dir), pkgDir).split(sep).join('/')]?.integrity;
  }
  return undefined;
}

export function tfjsRuntimeLayer(platform: Platform): DependencyLayer {
  const entries: DependencyEntry[] = [];
  for (const name of BUNDLED) {
    const dir = packageDir(name);
    const json = JSON.parse(readFileSync(join(dir, 'package.json'), 'utf8')) as PackageJson;
    const entry: DependencyEntry = { name: json.name, version: json.version, plugin: 'tfjs', type: 'npm' };
    if (json.license) entry.license = json.license;
    const integrity = lockfileIntegrity(dir);
    if (integrity) entry.integrity = integrity;
    entries.push(entry);
  }
  const wasmDir = packageDir('@tensorflow/tfjs-backend-wasm');
  const root = `${IMAGE_NODE_MODULES}/@tensorflow/tfjs-backend-wasm`;
  for (const f of WASM_FILES) if (!existsSync(join(wasmDir, f))) throw new Error(`tfjs: ${join(wasmDir, f)} is missing; reinstall @tensorflow/tfjs-backend-wasm`);
  const dirs = [IMAGE_NODE_MODULES, `${IMAGE_NODE_MODULES}/@tensorflow`, root, `${root}/dist`];
  return {
    name: 'tfjs-backend-wasm',
    files: [
      ...dirs.map((path) => ({ path, directory: true as const, mode: 0o755 })),
      { path: `${root}/package.json`, source: join(wasmDir, 'package.json'), mode: 0o644 },
      ...WASM_FILES.map((f) => ({ path: `${root}/${f}`, source: join(wasmDir, f), mode: 0o644 })),
    ],
    entries,
    // WASM is platform-neutral; versions pin the contents. Bump `layout` when the file selection changes.
    cacheKey: `${entries.map((e) => `${e.name}@${e.version}`).join('+')}/${platform.os}#layout1`,
  };
}
