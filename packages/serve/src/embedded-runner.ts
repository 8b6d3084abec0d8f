import { spawn } from 'node:child_process';
import { createInterface } from 'node:readline';
import { entrypointCommand } from '@pyml/launcher';
import { type UnpackedImage, unpackImage } from '@pyml/launcher';
import { type ModelExit, type ModelLaunch, type ModelProcess, type ModelRunner, StartupLog, waitForReadyLine } from './model-runner.ts';

/**
 * Runs a model as a child process: the image's own node on its unpacked rootfs, entrypoint `serve --socket`.
 * Ready when the entrypoint prints its `{"ready":true}` line on stdout (it does so after init succeeded).
 */
export class EmbeddedRunner implements ModelRunner {
  readonly kind = 'embedded' as const;

  async start(launch: ModelLaunch): Promise<ModelProcess> {
    // Cached per digest: only the first start of an image unpacks it.
    const image = 'rootfs' in launch.image ? (launch.image as UnpackedImage) : await unpackImage(launch.image.ref);
    // The lifeline: the child's stdin is a pipe from us that nobody writes; when we die (even by SIGKILL) it ends,
    // and the model server drains and exits instead of living on as an orphan.
    const cmd = entrypointCommand(image, ['serve', '--socket', launch.socket], { ...launch.env, PYML_LIFELINE_STDIN: '1', ...(launch.frames ? { PYML_FRAME_SOCKET: launch.frames } : {}) });
    const child = spawn(cmd.file, cmd.args, { env: cmd.env, cwd: cmd.cwd, stdio: ['pipe', 'pipe', 'pipe'] });
    const log = new StartupLog();
    createInterface({ input: child.stderr }).on('line', (line) => { log.add(line); launch.onLog(line); });
    const exited = new Promise<ModelExit>((resolve) => {
      child.once('exit', (code, signal) => resolve({ code, signal }));
      child.once('error', () => resolve({ code: null, signal: null }));
    });
    const proc: ModelProcess = {
      socket: launch.socket,
      pid: child.pid,
      exited,
      async stop(graceMs) {
        if (child.exitCode !== null || child.signalCode !== null) return;
        child.kill('SIGTERM');
        const timer = setTimeout(() => child.kill('SIGKILL'), graceMs);
        await exited;
        clearTimeout(timer);
      },
    };
    let spawnError: Error | undefined;
    child.once('error', (error) => { spawnError = error; });
    return waitForReadyLine({
      proc, stdout: child.stdout, name: launch.name, frames: launch.frames, timeoutMs: launch.startTimeoutMs, log, onLog: launch.onLog,
      kill: () => child.kill('SIGKILL'),
      describeExit: ({ code, signal }) => `model process ${spawnError ? `could not start: ${spawnError.message}` : signal ? `was killed by ${signal}` : `exited with code ${code}`} before it was ready`,
    });
  }
}
