/**
 * The timestamp of every file and of the image, in seconds since the epoch: `$SOURCE_DATE_EPOCH`
 * (reproducible-builds.org), else 0. A value that is not a whole number of seconds is refused.
 */
export function sourceDateEpochFromEnv(env: NodeJS.ProcessEnv = process.env): number {
  const text = env.SOURCE_DATE_EPOCH;
  if (text === undefined || text === '') return 0;
  const seconds = Number(text);
  if (!Number.isInteger(seconds) || seconds < 0) {
    throw new Error(`SOURCE_DATE_EPOCH must be a non-negative integer of seconds, got ${JSON.stringify(text)}`);
  }
  return seconds;
}
