/**
 * The Python sidecar process: started with a Unix socket pair on fd 3 (what Node's 'pipe' stdio is on Linux),
 * spoken to with the framing of framing.ts, restarted when it dies. Requests are pipelined over the one socket;
 * the sidecar answers them in order, one at a time, each reply naming its request id.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import type { Socket } from 'node:net';
import type { Logger, Tensors } from '@pyml/contract';
import { FrameReader, decodeFrame, encodeFrame, type FrameHeader } from './framing.ts';

export interface SidecarOptions {
  /** Python interpreter (in the image: /usr/bin/python3.11). */
  python: string;
  /** Argv before the interpreter's path: the image's dynamic loader when the image runs unpacked, not chrooted. */
  launcher?: string[];
  /** sys.path entries put first: the `pyml` Python package's parent directory and the image's dist-packages. */
  pythonPath: string[];
  /** The init request's payload: sources, module, className, weightsDir, signature. */
  init: Record<string, unknown>;
  logger: Logger;
  /** Milliseconds to wait for the sidecar's readiness (init reply). */
  startTimeoutMs?: number;
  env?: Record<string, string>;
}

/** A request the Python code failed; `pythonError` is "Type: message", `kind` says whose fault it was. */
export class SidecarError extends Error {
  override name = 'SidecarError';
  constructor(message: string, readonly kind: 'invalid' | 'internal' | 'crash', readonly traceback?: string) {
    super(message);
  }
}

interface Pending {
  resolve(value: { header: FrameHeader; tensors: Tensors }): void;
  reject(error: Error): void;
}

/** One running Python process. */
class SidecarProcess {
  readonly child: ChildProcess;
  private readonly socket: Socket;
  private readonly pending = new Map<number, Pending>();
  private nextId = 1;
  exited = false;
  readonly exitInfo: Promise<string>;

  constructor(options: SidecarOptions) {
    const bootstrap = [
      'import sys',
      `sys.path[:0] = ${JSON.stringify(options.pythonPath)}`,
      'from pyml._sidecar import main',
      'main()',
    ].join('\n');
    // -S: no site (no .pth side effects, the path is set above); -E: no PYTHON* variables from outside; -B: the image is read-only.
    const [file, ...pre] = [...(options.launcher ?? []), options.python];
    this.child = spawn(file!, [...pre, '-S', '-E', '-B', '-c', bootstrap], {
      // No 'ignore': libuv opens /dev/null for it, which a bare image (or its chroot) lacks.
      stdio: ['pipe', 'pipe', 'pipe', 'pipe'],
      // A fixed cwd: the entrypoint's may not exist (a chroot keeps the caller's cwd, which lies outside it).
      cwd: '/',
      env: { PATH: '/usr/bin:/bin', ...pickEnv(), ...options.env },
    });
    this.child.stdin!.end();
    this.child.stdout!.on('data', (d: Buffer) => process.stderr.write(d));
    this.child.stderr!.on('data', (d: Buffer) => process.stderr.write(d));
    this.socket = this.child.stdio[3] as Socket;
    const reader = new FrameReader((body) => this.onFrame(body));
    this.socket.on('data', (chunk: Buffer) => {
      try {
        reader.push(chunk);
      } catch (error) {
        options.logger.error('python sidecar sent a malformed frame; restarting it', { error: (error as Error).message });
        this.child.kill('SIGKILL');
      }
    });
    this.socket.on('error', () => {}); // the exit handler reports the failure
    this.exitInfo = new Promise((resolve) => {
      const done = (code: number | null, signal: NodeJS.Signals | null) => {
        if (this.exited) return;
        this.exited = true;
        const how = signal ? `killed by ${signal}` : `exited with code ${code}`;
        this.failAll(new SidecarError(`python sidecar ${how} while handling the request`, 'crash'));
        resolve(how);
      };
      this.child.on('exit', done);
      this.child.on('error', (error) => {
        options.logger.error('cannot start the python sidecar', { python: options.python, error: error.message });
        done(127, null);
      });
    });
  }

  private onFrame(body: Uint8Array): void {
    const { header, tensors } = decodeFrame(body);
    const p = this.pending.get(header.id);
    if (!p) return;
    this.pending.delete(header.id);
    if (header.ok) p.resolve({ header, tensors });
    else p.reject(new SidecarError(header.error ?? 'unknown Python error', header.kind === 'invalid' ? 'invalid' : 'internal', header.traceback));
  }

  private failAll(error: Error): void {
    for (const p of this.pending.values()) p.reject(error);
    this.pending.clear();
  }

  request(header: Omit<FrameHeader, 'id'>, tensors?: Tensors): Promise<{ header: FrameHeader; tensors: Tensors }> {
    if (this.exited) return Promise.reject(new SidecarError('python sidecar is not running', 'crash'));
    const id = this.nextId++;
    const parts = encodeFrame({ ...header, id }, tensors);
    return new Promise((resolve, reject) => {
      this.pending.set(id, { resolve, reject });
      this.socket.cork();
      for (const p of parts) this.socket.write(p);
      this.socket.uncork();
    });
  }

  stop(): Promise<string> {
    if (!this.exited) this.socket.end(); // EOF: the sidecar closes the model and exits
    const timer = setTimeout(() => this.child.kill('SIGKILL'), 5000);
    return this.exitInfo.finally(() => clearTimeout(timer));
  }
}

/** Variables the sidecar may need from the entrypoint's environment (thread counts, locale, log level). */
function pickEnv(): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(process.env)) {
    if (v !== undefined && (/^(PYML_|OMP_|MKL_|OPENBLAS_|LANG$|LC_)/.test(k))) out[k] = v;
  }
  return out;
}

/**
 * A supervised sidecar: starts the process and waits for its init reply; when it dies, requests in flight fail
 * with a crash error and a new process is started (with back-off while it keeps dying), re-running init.
 */
export class Sidecar {
  private current?: SidecarProcess;
  private ready?: Promise<SidecarProcess>;
  private stopped = false;
  private restarts = 0;
  private lastStart = 0;
  info: Record<string, unknown> = {};

  constructor(private readonly options: SidecarOptions) {}

  get pid(): number | undefined { return this.current?.child.pid; }
  get restartCount(): number { return this.restarts; }

  /** Starts the sidecar and resolves once its model is initialised (or rejects with init's error). */
  async start(): Promise<void> {
    await this.ensure();
  }

  private ensure(): Promise<SidecarProcess> {
    if (this.stopped) return Promise.reject(new SidecarError('python sidecar is stopped', 'crash'));
    this.ready ??= this.launch();
    return this.ready;
  }

  private async launch(): Promise<SidecarProcess> {
    // Back off when the last start was recent: a model that crashes on every request must not spin the CPU.
    const sinceLast = Date.now() - this.lastStart;
    const backoff = this.lastStart && sinceLast < 5000 ? Math.min(5000, 100 * 2 ** Math.min(this.restarts, 6)) : 0;
    if (backoff) await new Promise((r) => setTimeout(r, backoff));
    this.lastStart = Date.now();
    const proc = new SidecarProcess(this.options);
    this.current = proc;
    const timeoutMs = this.options.startTimeoutMs ?? 300_000;
    let timer: NodeJS.Timeout | undefined;
    try {
      const reply = await Promise.race([
        proc.request({ op: 'init', ...this.options.init }),
        new Promise<never>((_, reject) => { timer = setTimeout(() => reject(new SidecarError(`python sidecar did not become ready within ${timeoutMs} ms`, 'crash')), timeoutMs); }),
        proc.exitInfo.then((how) => { throw new SidecarError(`python sidecar ${how} before it was ready`, 'crash'); }),
      ]);
      this.info = (reply.header.info as Record<string, unknown>) ?? {};
    } catch (error) {
      this.ready = undefined;
      await proc.stop();
      throw error instanceof SidecarError && error.kind !== 'crash'
        ? new SidecarError(`python model init failed: ${error.message}`, 'internal', error.traceback)
        : error;
    } finally {
      clearTimeout(timer);
    }
    this.options.logger.info('python sidecar ready', { pid: proc.child.pid, ...this.info });
    void proc.exitInfo.then((how) => {
      if (this.current !== proc || this.stopped) return;
      this.restarts++;
      this.ready = undefined;
      this.options.logger.warn(`python sidecar ${how}; restarting it`, { restarts: this.restarts });
      this.ensure().catch((error: Error) => this.options.logger.error('python sidecar restart failed', { error: error.message }));
    });
    return proc;
  }

  /** Runs predict in the sidecar. Python exceptions reject with a SidecarError carrying the Python message. */
  async predict(inputs: Tensors, frame = false): Promise<Tensors> {
    const proc = await this.ensure();
    // `frame`: the tensors are a dataframe's columns; the sidecar hands the model a pandas DataFrame of them.
    const reply = await proc.request(frame ? { op: 'predict', frame: true } : { op: 'predict' }, inputs);
    return reply.tensors;
  }

  async stop(): Promise<void> {
    this.stopped = true;
    await this.current?.stop();
  }
}
