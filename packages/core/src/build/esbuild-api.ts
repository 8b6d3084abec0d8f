import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import type * as Esbuild from 'esbuild';

const require = createRequire(import.meta.url);
let api: typeof Esbuild | undefined;
let version: string | undefined;

/**
 * esbuild's JavaScript API, required as CommonJS on first use. An ESM import of it made Node scan its 80 KB main.js
 * for export names (cjs-module-lexer, ~60 ms of CPU at every start of `pyml build`); require() does not, and a build
 * whose bundles are all cached never loads it.
 */
export function esbuild(): typeof Esbuild {
  return (api ??= require('esbuild') as typeof Esbuild);
}

/** esbuild's version (part of the bundle caches' keys), from its package.json: knowing it does not load esbuild. */
export function esbuildVersion(): string {
  return (version ??= (JSON.parse(readFileSync(require.resolve('esbuild/package.json'), 'utf8')) as { version: string }).version);
}
