/**
 * @pyml/errors: the error a user is meant to read and the exit codes, shared by the builder, the serving and batch
 * commands and the CLI; and "did you mean" for what a user mistyped. No dependencies, so importing it never drags
 * a package's machinery along.
 */
export { EXIT, type ExitCode } from './exit-codes.ts';
export { PymlError } from './pyml-error.ts';
export { closest, didYouMean, editDistance } from './did-you-mean.ts';
