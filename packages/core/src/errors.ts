import { EXIT, PymlError } from '@pyml/errors';

// The shared ones live in @pyml/errors (no dependencies); re-exported so the builder's API stays whole.
export { EXIT, PymlError };

/** The config is missing or wrong (exit code 2). */
export class ConfigError extends PymlError {
  constructor(message: string, hint?: string) {
    super(message, EXIT.usage, hint);
  }
}

/** The build failed on the project's inputs (exit code 1). */
export class BuildError extends PymlError {
  constructor(message: string, hint?: string) {
    super(message, EXIT.failure, hint);
  }
}

/** Thrown by a plugin hook; carries the plugin's and the hook's names, as Rollup does. */
export class PluginError extends PymlError {
  constructor(readonly plugin: string, readonly hook: string, cause: unknown) {
    const inner = cause instanceof Error ? cause : new Error(String(cause));
    super(`[plugin ${plugin}] ${hook}: ${inner.message}`, inner instanceof PymlError ? inner.exitCode : EXIT.failure,
      inner instanceof PymlError ? inner.hint : undefined);
    this.cause = inner;
  }
}
