/**
 * Exit codes of every pyml command, stable and documented in the README ("Exit codes"):
 *   0 ok;
 *   1 failure while running: a build step, a prediction, a model that does not start, a registry or the network,
 *     a verification or a --fail-on gate that fails;
 *   2 bad usage, config or input: an unknown command or flag, a bad flag value, a missing or wrong config, a
 *     config that contradicts the model, an input (image path, request file) that is missing or not what it must be;
 *   130 interrupted (Ctrl-C).
 */
export const EXIT = { ok: 0, failure: 1, usage: 2, interrupted: 130 } as const;

export type ExitCode = (typeof EXIT)[keyof typeof EXIT];
