import { constants, hostname } from 'node:os';
import { basename, dirname } from 'node:path';
import { PassThrough } from 'node:stream';
import { createInterface } from 'node:readline';
import Docker from 'dockerode';
import { processAlive } from '@pyml/image';
import { imageTarStream } from './image-tar-stream.ts';
import { type ModelExit, type ModelLaunch, type ModelProcess, type ModelRunner, ModelStartError, StartupLog, waitForReadyLine } from './model-runner.ts';

/** Which serve process started a container, and on which host: what the orphan sweep goes by. */
const OWNER_HOST = 'dev.pyml.serve.host';
const OWNER_PID = 'dev.pyml.serve.pid';

/** Where the socket directory is mounted in the container. */
const SOCKET_MOUNT = '/run/pyml-serve';

const SIGNALS = Object.fromEntries(Object.entries(constants.signals).map(([name, n]) => [n, name])) as Record<number, string>;

export interface DockerRunnerOptions {
  /** The engine's API socket (default: DOCKER_HOST's unix:// path, else /var/run/docker.sock). */
  socketPath?: string;
}

/**
 * Runs each model as a container through a Docker-compatible engine (dockerode): the image is loaded once (by
 * its config digest, which is the engine's image ID), the container gets the socket directory bind-mounted, no
 * network (`--network none`), and the entrypoint `serve --socket` on the mounted path. Ready at the ready line on
 * the container's stdout, like the embedded runner.
 */
export class DockerRunner implements ModelRunner {
  readonly kind = 'docker' as const;
  readonly docker: Docker;
  private readonly loaded = new Map<string, Promise<void>>();
  private readonly containers = new Set<Docker.Container>();
  private swept?: Promise<void>;

  constructor(opts: DockerRunnerOptions = {}) {
    const host = process.env.DOCKER_HOST;
    const socketPath = opts.socketPath ?? (host?.startsWith('unix://') ? host.slice('unix://'.length) : '/var/run/docker.sock');
    this.docker = new Docker({ socketPath });
  }

  /** Loads the image into the engine unless it is there already (once per config digest per runner). */
  ensureImage(ref: string, imageId: string, tag?: string): Promise<void> {
    let loading = this.loaded.get(imageId);
    if (!loading) {
      loading = (async () => {
        try {
          await this.docker.getImage(imageId).inspect();
          return;
        } catch {
          // Not loaded yet.
        }
        const stream = await this.docker.loadImage(await imageTarStream(ref, tag ? [tag] : []), { quiet: true });
        const events = await new Promise<{ error?: string; errorDetail?: { message?: string } }[]>((resolve, reject) => {
          this.docker.modem.followProgress(stream, (error, output) => (error ? reject(error) : resolve(output as never)));
        });
        const failed = events.find((e) => e.error || e.errorDetail);
        if (failed) throw new Error(`docker load of ${ref} failed: ${failed.error ?? failed.errorDetail?.message}`);
        await this.docker.getImage(imageId).inspect().catch(() => {
          throw new Error(`docker load of ${ref} did not produce image ${imageId}`);
        });
      })();
      this.loaded.set(imageId, loading);
      loading.catch(() => this.loaded.delete(imageId));
    }
    return loading;
  }

  async start(launch: ModelLaunch): Promise<ModelProcess> {
    const { image } = launch;
    try {
      await this.ensureImage(image.ref, image.configDigest, `${image.manifest.name}:${image.manifest.version}`);
    } catch (error) {
      throw new ModelStartError(`cannot load image ${image.ref} into the Docker engine: ${(error as Error).message}`);
    }
    await (this.swept ??= this.sweepOrphans());
    const inContainer = `${SOCKET_MOUNT}/${basename(launch.socket)}`;
    const container = await this.docker.createContainer({
      Image: image.configDigest,
      Cmd: ['serve', '--socket', inContainer],
      // The image's health check probes the default command's REST port, which this socket-only command never opens.
      Healthcheck: { Test: ['NONE'] },
      // The lifeline, as for the embedded runner: stdin stays attached to this process, and when the attach ends
      // (serve died, even by SIGKILL) the engine closes it (StdinOnce) and the model server drains and exits.
      Env: Object.entries({ ...launch.env, PYML_LIFELINE_STDIN: '1', ...(launch.frames ? { PYML_FRAME_SOCKET: `${SOCKET_MOUNT}/${basename(launch.frames)}` } : {}) }).map(([k, v]) => `${k}=${v}`),
      OpenStdin: true, StdinOnce: true, AttachStdin: true,
      Labels: { 'dev.pyml.serve.model': launch.name, [OWNER_HOST]: hostname(), [OWNER_PID]: String(process.pid) },
      // Run as serve's own user when that is not root, so the 0600 socket it creates is one serve can open.
      ...(process.getuid && process.getuid() !== 0 ? { User: `${process.getuid()}:${process.getgid!()}` } : {}),
      AttachStdout: true, AttachStderr: true,
      HostConfig: { Binds: [`${dirname(launch.socket)}:${SOCKET_MOUNT}`], NetworkMode: 'none' },
    });
    this.containers.add(container);
    const stdout = new PassThrough();
    const stderr = new PassThrough();
    const attached = await container.attach({ stream: true, stdin: true, stdout: true, stderr: true, hijack: true });
    this.docker.modem.demuxStream(attached, stdout, stderr);
    attached.on('end', () => { stdout.end(); stderr.end(); });
    const log = new StartupLog();
    createInterface({ input: stderr }).on('line', (line) => { log.add(line); launch.onLog(line); });
    // 'next-exit': the default 'not-running' answers at once for a container that is created but not started.
    const exited: Promise<ModelExit> = container.wait({ condition: 'next-exit' }).then(
      (r: { StatusCode: number }) => (r.StatusCode > 128 && SIGNALS[r.StatusCode - 128] ? { code: null, signal: SIGNALS[r.StatusCode - 128] } : { code: r.StatusCode, signal: null }),
      () => ({ code: null, signal: null }),
    ).then(async (exit: ModelExit) => {
      this.containers.delete(container);
      await container.remove({ force: true }).catch(() => {});
      return exit;
    });
    await container.start();
    const pid = ((await container.inspect()) as { State: { Pid: number } }).State.Pid || undefined;
    const proc: ModelProcess = {
      socket: launch.socket,
      pid,
      exited,
      async stop(graceMs) {
        await container.stop({ t: Math.max(1, Math.ceil(graceMs / 1000)) }).catch(() => {});
        await exited;
      },
    };
    return waitForReadyLine({
      proc, stdout, name: launch.name, frames: launch.frames, timeoutMs: launch.startTimeoutMs, log, onLog: launch.onLog,
      kill: () => { void container.kill().catch(() => {}); },
      describeExit: ({ code, signal }) => `model container ${signal ? `was killed by ${signal}` : `exited with code ${code}`} before it was ready`,
    });
  }

  /**
   * Removes the containers that a killed `pyml serve` on this host left behind (their lifeline has stopped them; a
   * container whose owner process still runs, or that another host's serve started, is left alone).
   */
  private async sweepOrphans(): Promise<void> {
    const host = hostname();
    const containers = await this.docker.listContainers({ all: true, filters: { label: [`${OWNER_HOST}=${host}`] } }).catch(() => []);
    await Promise.all(containers.map(async (c) => {
      const pid = Number(c.Labels[OWNER_PID]);
      if (!Number.isSafeInteger(pid) || pid <= 0 || pid === process.pid || processAlive(pid)) return;
      await this.docker.getContainer(c.Id).remove({ force: true }).catch(() => {});
    }));
  }

  /** Removes containers still running (the service is stopping). */
  async close(): Promise<void> {
    await Promise.all([...this.containers].map((c) => c.remove({ force: true }).catch(() => {})));
  }
}
