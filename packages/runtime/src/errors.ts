/**
 * The three ways a prediction can fail, so every front end (gRPC, CLI, batch) maps them the same way:
 * the caller's fault, the model's fault, or the model never starting.
 */

/** The request does not fit the signature or the wire format. gRPC: INVALID_ARGUMENT. */
export class InvalidInputError extends Error {
  override name = 'InvalidInputError';
  /** The offending tensor (or column), when one is to blame. */
  readonly tensor?: string;
  constructor(message: string, tensor?: string) {
    super(message);
    this.tensor = tensor;
  }
}

/** The model threw, or returned something its signature does not allow. gRPC: INTERNAL. */
export class ModelError extends Error {
  override name = 'ModelError';
  readonly tensor?: string;
  constructor(message: string, options?: { tensor?: string; cause?: unknown }) {
    super(message, options?.cause === undefined ? undefined : { cause: options.cause });
    this.tensor = options?.tensor;
  }
}

/** Loading the manifest, an adapter or the model, or the model's `init`, failed. The entrypoint exits with 3. */
export class InitError extends Error {
  override name = 'InitError';
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options?.cause === undefined ? undefined : { cause: options.cause });
  }
}

/** Text for a thrown value, with its cause chain, for logs and status details. */
export function describeError(error: unknown): string {
  if (!(error instanceof Error)) return String(error);
  let text = error.message;
  let cause = (error as { cause?: unknown }).cause;
  while (cause !== undefined) {
    text += `: ${cause instanceof Error ? cause.message : String(cause)}`;
    cause = cause instanceof Error ? (cause as { cause?: unknown }).cause : undefined;
  }
  return text;
}
