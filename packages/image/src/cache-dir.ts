import { homedir } from 'node:os';
import { join, resolve } from 'node:path';

/**
 * pyml's cache directory: `dir` if given, else `$PYML_CACHE_DIR`, else `~/.cache/pyml`; always absolute, because
 * the launcher runs an unpacked image's loader from it with another working directory.
 */
export function pymlCacheDir(dir?: string): string {
  return resolve(dir || process.env.PYML_CACHE_DIR || join(homedir(), '.cache', 'pyml'));
}
