/**
 * @pyml/errors: the error a user is meant to read and the exit codes, shared by the builder, the serving and batch
 * commands and the CLI. No dependencies, so importing it never drags a package's machinery along.
 */
export { EXIT, type ExitCode } from './exit-codes.ts';
export { PymlError } from './pyml-error.ts';
