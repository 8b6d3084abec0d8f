import { createInterface } from 'node:readline';
import type { ImageInfo } from '@pyml/launcher';

/** How a model process ended. */
export interface ModelExit {
  code: number | null;
  signal: string | null;
}

/** One started model process (or container) serving the V2 protocol on a Unix socket. */
export interface ModelProcess {
  socket: string;
  /** The model's frame socket (pyml serve's framed protocol), when its ready line says it serves one. */
  frames?: string;
  /** Host pid of the process, when there is one on this host (embedded runner). */
  pid?: number;
  /** Settles when the process ends, for whatever reason. */
  exited: Promise<ModelExit>;
  /** SIGTERM (the entrypoint drains), then SIGKILL after `graceMs`. */
  stop(graceMs: number): Promise<void>;
}

/** What a runner needs to start one model. */
export interface ModelLaunch {
  name: string;
  image: ImageInfo;
  /** Path of the Unix socket the model must serve on. */
  socket: string;
  /** Path of the Unix socket for the framed protocol, asked of the model through PYML_FRAME_SOCKET (older images ignore it). */
  frames?: string;
  /** Extra environment for the entrypoint (batching, message size). */
  env: Record<string, string>;
  /** Each line the model logs (its stderr), for the service's log. */
  onLog(line: string): void;
  /** Longest a start (init included) may take. */
  startTimeoutMs: number;
}

/** The model did not get to its ready line: init failed, it crashed, or it timed out. */
export class ModelStartError extends Error {
  override name = 'ModelStartError';
}

/** Starts model processes: embedded (a child process on the unpacked rootfs) or docker (a container). */
export interface ModelRunner {
  readonly kind: 'embedded' | 'docker';
  /** Resolves once the model printed its ready line (init done); rejects with the init error otherwise. */
  start(launch: ModelLaunch): Promise<ModelProcess>;
  close?(): Promise<void>;
}

/** Reads what went wrong from the entrypoint's log lines: the last error entry, else the last line. */
export class StartupLog {
  private lastError?: string;
  private lastLine?: string;

  add(line: string): void {
    if (!line.trim()) return;
    this.lastLine = line;
    try {
      const entry = JSON.parse(line) as { level?: string; msg?: string; error?: string };
      if (entry.level === 'error') this.lastError = entry.error ? `${entry.msg}: ${entry.error}` : entry.msg;
    } catch {
      // A plain line (a usage error, a native crash message).
    }
  }

  reason(fallback: string): string {
    return this.lastError ?? (this.lastLine ? `${fallback}; last log line: ${this.lastLine.slice(0, 500)}` : fallback);
  }
}

/**
 * Resolves with `proc` when the entrypoint prints its `{"ready":true}` line on stdout (other stdout lines go to
 * `onLog`); rejects when the model exits first (`describeExit` says how) or when `timeoutMs` passes (after `kill`).
 * Both runners wait this way, whatever carries the model's stdout.
 */
export function waitForReadyLine(opts: {
  proc: ModelProcess; stdout: NodeJS.ReadableStream; name: string; timeoutMs: number; log: StartupLog;
  onLog: (line: string) => void; kill: () => void; describeExit: (exit: ModelExit) => string;
  /** The frame socket's path on this side, taken when the ready line names one. */
  frames?: string;
}): Promise<ModelProcess> {
  return new Promise<ModelProcess>((resolve, reject) => {
    const timer = setTimeout(() => {
      opts.kill();
      reject(new ModelStartError(`model '${opts.name}' did not become ready within ${opts.timeoutMs} ms`));
    }, opts.timeoutMs);
    createInterface({ input: opts.stdout }).on('line', (line) => {
      try {
        const ready = JSON.parse(line) as { ready?: boolean; frames?: unknown };
        if (ready.ready === true) {
          clearTimeout(timer);
          if (typeof ready.frames === 'string' && opts.frames) opts.proc.frames = opts.frames;
          resolve(opts.proc);
        }
      } catch {
        opts.onLog(line);
      }
    });
    void opts.proc.exited.then((exit) => {
      clearTimeout(timer);
      reject(new ModelStartError(opts.log.reason(opts.describeExit(exit))));
    });
  });
}
