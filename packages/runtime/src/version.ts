/** Reported by ServerMetadata; kept in step with packages/runtime/package.json (no file reads at run time). */
export const RUNTIME_NAME = 'pyml';
export const RUNTIME_VERSION = '0.1.0';
