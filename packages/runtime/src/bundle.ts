import { fileURLToPath } from 'node:url';

// This module's own extension: .ts in pyml's checkout (sources, `source` export condition), .js once installed.
const EXT = import.meta.url.endsWith('.ts') ? '.ts' : '.js';

/**
 * How the builder bundles the runtime into `/opt/pyml/runtime/entrypoint.mjs`: esbuild options (a plain object, so
 * this package does not depend on esbuild). grpc-js and protobufjs are CommonJS and `require` Node built-ins at
 * run time; an ESM bundle has no `require`, so the banner provides one.
 */
export function runtimeBundleOptions(outfile: string) {
  return {
    entryPoints: [fileURLToPath(new URL(`./entrypoint${EXT}`, import.meta.url))],
    conditions: EXT === '.ts' ? ['source'] : [],
    outfile,
    bundle: true,
    platform: 'node' as const,
    format: 'esm' as const,
    target: 'node20',
    banner: { js: "import { createRequire as __pymlCreateRequire } from 'node:module'; const require = __pymlCreateRequire(import.meta.url);" },
    legalComments: 'none' as const,
    logLevel: 'warning' as const,
  };
}
