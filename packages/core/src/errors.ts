/** Exit codes of the CLI, stable and documented in the README. */
export const EXIT = { ok: 0, failure: 1, usage: 2 } as const;

/** An error meant for the user: the message says what, where, and what to do. */
export class PymlError extends Error {
  constructor(message: string, readonly exitCode: number = EXIT.failure, readonly hint?: string) {
    super(message);
    this.name = new.target.name;
  }
}

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
