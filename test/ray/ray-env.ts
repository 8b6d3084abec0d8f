import { execFileSync } from 'node:child_process';
import { join, resolve } from 'node:path';

/** The checkout's Ray environment (scripts/setup-ray.sh: .venv-ray, or PYML_RAY_VENV). */
const ROOT = resolve(import.meta.dirname, '../..');
const VENV = process.env.PYML_RAY_VENV ?? join(ROOT, '.venv-ray');

let ready = false;

/**
 * The venv's bin directory, made by scripts/setup-ray.sh if it is not there yet (a no-op when its marker matches).
 * When it cannot be made, this throws with setup-ray's own reason: the Ray tests fail, they never skip.
 */
export function rayVenvBin(): string {
  if (!ready) {
    try {
      execFileSync('bash', [join(ROOT, 'scripts/setup-ray.sh')], { stdio: ['ignore', 'ignore', 'pipe'], timeout: 600_000, env: { ...process.env, PYML_RAY_VENV: VENV } });
    } catch (error) {
      const said = String((error as { stderr?: Buffer }).stderr ?? (error as Error).message).trim();
      throw new Error(`the Ray tests need the Python environment of scripts/setup-ray.sh (${VENV}), which could not be made:\n${said}`);
    }
    ready = true;
  }
  return join(VENV, 'bin');
}

/** The venv's Python, for PYML_RAY_PYTHON. */
export function rayPythonPath(): string {
  return join(rayVenvBin(), 'python');
}
