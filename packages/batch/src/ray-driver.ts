import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';

/** The Ray Data driver shipped with this package (python/ray_job.py, beside src/ and dist/). */
export const RAY_JOB_FILE = fileURLToPath(new URL('../python/ray_job.py', import.meta.url));

const HOW_TO_GET_RAY = "--engine ray needs a Python with ray[data] and pyarrow: set PYML_RAY_PYTHON to one (a venv with pip install 'ray[data]' pyarrow; in a pyml checkout, bash scripts/setup-ray.sh makes .venv-ray)";

/** What the driver prints when the job succeeded. */
export interface RayJobSummary {
  rows: number;
  files: number;
  nodes: number;
  actors: number;
  seconds: { connect: number; run: number };
}

/** The Python that runs the driver: --ray-python, else PYML_RAY_PYTHON, else python3 on PATH. */
export function rayPython(explicit?: string): string {
  return explicit ?? process.env.PYML_RAY_PYTHON ?? 'python3';
}

/**
 * Runs ray_job.py SPEC under `python`, as its own process group (so an abort stops it and the local Ray it may have
 * started). Resolves with its summary; rejects with the error it reported (its last JSON line on stderr).
 */
export function runRayJob(python: string, specFile: string, signal?: AbortSignal): Promise<RayJobSummary> {
  return new Promise((resolve, reject) => {
    const child = spawn(python, [RAY_JOB_FILE, specFile], {
      stdio: ['ignore', 'pipe', 'pipe'], detached: true,
      env: { ...process.env, RAY_USAGE_STATS_ENABLED: '0', PYTHONUNBUFFERED: '1' },
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (c: Buffer) => { stdout += c.toString(); });
    child.stderr.on('data', (c: Buffer) => { stderr = (stderr + c.toString()).slice(-256 * 1024); });
    const stop = () => {
      try { process.kill(-child.pid!, 'SIGTERM'); } catch { /* gone */ }
      setTimeout(() => { try { process.kill(-child.pid!, 'SIGKILL'); } catch { /* gone */ } }, 5000).unref();
    };
    signal?.addEventListener('abort', stop, { once: true });
    child.on('error', (error) => reject(new Error(`cannot run ${python} (${error.message}); ${HOW_TO_GET_RAY}`)));
    child.on('close', (code, killed) => {
      signal?.removeEventListener('abort', stop);
      if (code === 0) {
        const line = stdout.trim().split('\n').at(-1) ?? '';
        try {
          resolve(JSON.parse(line) as RayJobSummary);
        } catch {
          reject(new Error(`the Ray driver printed no summary: ${stdout.slice(-500)}`));
        }
        return;
      }
      reject(new Error(driverFailure(stderr, code, killed)));
    });
  });
}

/** The driver's own report ({"error"} line), else its exit and last lines. */
function driverFailure(stderr: string, code: number | null, signal: NodeJS.Signals | null): string {
  const lines = stderr.trim().split('\n');
  for (const line of [...lines].reverse()) {
    try {
      const report = JSON.parse(line) as { error?: unknown; type?: unknown };
      if (report.type === 'RayMissing') return `the Ray driver's Python cannot import ${String(report.error)}; ${HOW_TO_GET_RAY}`;
      if (typeof report.error === 'string') return `the Ray job failed: ${conciseRayError(report.error)}`;
    } catch { /* not a report */ }
  }
  return `the Ray driver ${signal ? `was killed by ${signal}` : `exited with code ${code}`}: ${lines.slice(-8).join('\n')}`;
}

/**
 * Ray wraps a task's exception in several layers of tracebacks; the model's own message (raised by the actor as
 * "pyml model ... failed ...") is what the user needs.
 */
function conciseRayError(message: string): string {
  const own = [...message.matchAll(/pyml model (?!%s)\S+ failed[^\n]*/g)].at(-1);
  return own ? own[0] : message.split('\n').filter(Boolean).slice(-6).join('\n');
}
