import { fileURLToPath } from 'node:url';

/**
 * How the builder bundles the runtime into `/opt/pyml/runtime/entrypoint.mjs`: esbuild options (a plain object, so
 * this package does not depend on esbuild). grpc-js and protobufjs are CommonJS and `require` Node built-ins at
 * run time; an ESM bundle has no `require`, so the banner provides one.
 */
export function runtimeBundleOptions(outfile: string) {
  return {
    entryPoints: [fileURLToPath(new URL('./entrypoint.ts', import.meta.url))],
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
