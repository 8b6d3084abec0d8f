import { spawn } from 'node:child_process';
import { createInterface } from 'node:readline';
import { entrypointCommand } from '@pyml/launcher';
import { type UnpackedImage, unpackImage } from '@pyml/launcher';
import { type ModelExit, type ModelLaunch, type ModelProcess, type ModelRunner, ModelStartError, StartupLog } from './model-runner.ts';

/**
 * Runs a model as a child process: the image's own node on its unpacked rootfs, entrypoint `serve --socket`.
 * Ready when the entrypoint prints its `{"ready":true}` line on stdout (it does so after init succeeded).
 */
export class EmbeddedRunner implements ModelRunner {
  readonly kind = 'embedded' as const;

  async start(launch: ModelLaunch): Promise<ModelProcess> {
    // Cached per digest: only the first start of an image unpacks it.
    const image = 'rootfs' in launch.image ? (launch.image as UnpackedImage) : await unpackImage(launch.image.ref);
    const cmd = entrypointCommand(image, ['serve', '--socket', launch.socket], launch.env);
    const child = spawn(cmd.file, cmd.args, { env: cmd.env, cwd: cmd.cwd, stdio: ['ignore', 'pipe', 'pipe'] });
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
    return new Promise<ModelProcess>((resolve, reject) => {
      let spawnError: Error | undefined;
      child.once('error', (error) => { spawnError = error; });
      const timer = setTimeout(() => {
        child.kill('SIGKILL');
        reject(new ModelStartError(`model '${launch.name}' did not become ready within ${launch.startTimeoutMs} ms`));
      }, launch.startTimeoutMs);
      const lines = createInterface({ input: child.stdout });
      lines.on('line', (line) => {
        try {
          if ((JSON.parse(line) as { ready?: boolean }).ready === true) {
            clearTimeout(timer);
            resolve(proc);
          }
        } catch {
          launch.onLog(line);
        }
      });
      void exited.then(({ code, signal }) => {
        clearTimeout(timer);
        const how = spawnError ? `could not start: ${spawnError.message}` : signal ? `was killed by ${signal}` : `exited with code ${code}`;
        reject(new ModelStartError(log.reason(`model process ${how} before it was ready`)));
      });
    });
  }
}
