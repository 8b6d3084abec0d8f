/**
 * Preloaded by scripts/test.sh (`node --import tsx --import ./test/helpers/hook-errors.ts`): uvu swallows an error
 * thrown by a `test.before` or `test.after` hook (its runner returns from a `finally`), so a suite whose setup fails
 * shows only "(0 / N)", with no reason and exit code 0. This prints the hook's error (its stack names the file) and
 * makes the process exit 1.
 */
import { test } from 'uvu';

let failed = false;

type Hook = typeof test.before;

function reporting(kind: 'before' | 'after', register: Hook): Hook {
  const wrapped = (handler: Parameters<Hook>[0]) => register(async (state) => {
    try {
      return await handler(state);
    } catch (error) {
      failed = true;
      // The error's own stack names the test file.
      process.stderr.write(`\n  test.${kind} hook failed:\n  ${(error as Error)?.stack ?? String(error)}\n\n`);
      throw error;
    }
  });
  return Object.assign(wrapped, { each: register.each });
}

test.before = reporting('before', test.before);
test.after = reporting('after', test.after);
process.on('exit', () => {
  if (failed) process.exitCode = 1;
});
