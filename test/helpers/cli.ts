import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';

export const REPO = fileURLToPath(new URL('../../', import.meta.url));
export const PYML_BIN = `${REPO}packages/cli/bin/pyml.js`;

export interface CliResult {
  code: number;
  stdout: string;
  stderr: string;
}

/** Runs the real `pyml` CLI in a child process, as a user would. */
export function pyml(args: string[], opts: { cwd?: string; env?: Record<string, string> } = {}): Promise<CliResult> {
  return runProcess(process.execPath, [PYML_BIN, ...args], opts);
}

export function runProcess(cmd: string, args: string[], opts: { cwd?: string; env?: Record<string, string>; input?: string } = {}): Promise<CliResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, { cwd: opts.cwd ?? REPO, env: { ...process.env, ...testEnv(), ...opts.env }, stdio: ['pipe', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d) => (stdout += d));
    child.stderr.on('data', (d) => (stderr += d));
    child.on('error', reject);
    child.on('close', (code) => resolve({ code: code ?? -1, stdout, stderr }));
    // A child that exits before reading its stdin (a quick usage error) makes this write fail with EPIPE: its exit
    // code and output are the result, not this write.
    child.stdin.on('error', () => {});
    child.stdin.end(opts.input ?? '');
  });
}

/** Tests share one blob cache so the node base layer is compressed once per run. */
export function testEnv(): Record<string, string> {
  return { PYML_CACHE_DIR: process.env.PYML_TEST_CACHE ?? '/tmp/pyml-test-cache', NO_COLOR: '1' };
}

export function parseJson<T = Record<string, unknown>>(r: CliResult): T {
  try {
    return JSON.parse(r.stdout) as T;
  } catch {
    throw new Error(`expected JSON on stdout (exit ${r.code}); stdout: ${r.stdout.slice(0, 500)}\nstderr: ${r.stderr.slice(0, 2000)}`);
  }
}
