/** Ctrl-C (or the caller's abort) stopped the run; nothing was written. */
export class BatchInterruptedError extends Error {
  override name = 'BatchInterruptedError';
}
