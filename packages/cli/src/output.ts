// Not from @pyml/core: loading the builder would slow every command's start-up.
import { PymlError, EXIT } from '@pyml/errors';
import { progressMode } from './progress.ts';

export interface OutputOptions {
  json: boolean;
}

/**
 * Whether to show progress at all (see progress.ts: `--progress`, PYML_PROGRESS, quiet by default with --json).
 * Warnings are shown either way.
 */
export function showProgress(opts: OutputOptions): boolean {
  return progressMode(opts.json) !== 'quiet';
}

const useColor = () => Boolean(process.stderr.isTTY) && !('NO_COLOR' in process.env);

export function printJson(value: unknown): void {
  process.stdout.write(`${JSON.stringify(value, null, 2)}\n`);
}

/**
 * Prints an error to stderr (as JSON on stdout too with --json) and returns its exit code. An error of exit code 2
 * (usage, config, input) ends with the command's help: `see pyml build --help` (`command` is the verb run, if any).
 */
export function reportError(err: unknown, opts: OutputOptions & { command?: string }): number {
  const known = err instanceof PymlError;
  const code = known ? err.exitCode : EXIT.failure;
  const message = err instanceof Error ? err.message : String(err);
  const hint = known ? err.hint : undefined;
  const help = code === EXIT.usage ? helpCommand(opts.command) : undefined;
  if (opts.json) printJson({ ok: false, error: { message, ...(hint ? { hint } : {}), exitCode: code, ...(help ? { help } : {}) } });
  const red = useColor() ? '\x1b[31m' : '';
  const reset = useColor() ? '\x1b[0m' : '';
  process.stderr.write(`${red}error${reset}: ${message}\n${hint ? `  hint: ${hint}\n` : ''}${help ? `  see ${help}\n` : ''}`);
  if (!known && process.env.PYML_DEBUG && err instanceof Error) process.stderr.write(`${err.stack}\n`);
  return code;
}

/** `pyml build --help`, or `pyml --help` outside a command. */
export function helpCommand(command?: string): string {
  return command ? `pyml ${command} --help` : 'pyml --help';
}

export function formatBytes(n: number): string {
  if (n < 1024) return `${n} B`;
  const units = ['KiB', 'MiB', 'GiB', 'TiB'];
  let v = n / 1024;
  let i = 0;
  while (v >= 1024 && i < units.length - 1) { v /= 1024; i++; }
  return `${v.toFixed(v < 10 ? 1 : 0)} ${units[i]}`;
}

/** A wrong command line: exit code 2 (the report adds the command's `see pyml VERB --help`). */
export function usage(message: string, hint?: string): PymlError {
  return new PymlError(message, EXIT.usage, hint);
}
