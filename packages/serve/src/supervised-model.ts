import type { Logger } from '@pyml/contract';
import type { ImageInfo } from '@pyml/launcher';
import { type EndpointOptions, ModelEndpoint } from './model-endpoint.ts';
import type { ModelLaunch, ModelProcess, ModelRunner } from './model-runner.ts';

export interface SupervisionOptions extends EndpointOptions {
  runner: ModelRunner;
  launch: Omit<ModelLaunch, 'onLog'>;
  logger: Logger;
  /** First restart delay; doubles per consecutive failure up to `maxBackoffMs`. */
  backoffMs?: number;
  maxBackoffMs?: number;
  /** A process up this long counts as healthy again: the next crash restarts after `backoffMs`. */
  healthyAfterMs?: number;
  onRestart?(): void;
  /** Start at the first call that needs the model instead of at once. */
  onDemand?: boolean;
  /** With `onDemand`: stop a model no call has used for this long; the next call starts it again. */
  idleTimeoutMs?: number;
}

/**
 * A model process kept running: started through a runner (at once, or on demand by the first call that needs it),
 * restarted with exponential backoff when it dies or fails to start, while the rest of the service keeps serving.
 * Init errors are kept for ModelMetadata and logs. On demand, a model unused for `idleTimeoutMs` is stopped and
 * goes back to idle.
 */
export class SupervisedModel extends ModelEndpoint {
  private process?: ModelProcess;
  private stopping = false;
  /** The process is being stopped for idleness, not because it died. */
  private parking = false;
  private supervising = false;
  private idleTimer?: NodeJS.Timeout;
  private wake?: () => void;
  private attempt = 0;
  readonly source: string;

  constructor(name: string, private readonly opts: SupervisionOptions) {
    super(name, opts);
    this.source = `${opts.runner.kind}:${opts.launch.image.ref}`;
  }

  get pid(): number | undefined {
    return this.process?.pid;
  }

  /** The image this model runs (the last one swapped in). */
  get image(): ImageInfo {
    return this.opts.launch.image;
  }

  /**
   * A hot swap (`pyml serve --watch`): starts `launch` beside the running process; once it is ready, new calls go
   * to it while the old process finishes the calls it has (SIGTERM drains, SIGKILL after `graceMs`). A failed start
   * rejects with its error and leaves the running process serving. Later (re)starts use the new launch.
   */
  async swap(launch: Omit<ModelLaunch, 'onLog'>, graceMs: number): Promise<void> {
    if (!this.process || !this.ready) {
      // Nothing runs (idle, or failing and backing off): the next start takes the new image, now if one is due.
      this.opts.launch = launch;
      this.wake?.();
      return;
    }
    const old = this.process;
    const next = await this.opts.runner.start({ ...launch, onLog: (line) => process.stderr.write(`${line}\n`) });
    this.opts.launch = launch;
    if (this.stopping || this.process !== old || !this.ready) {
      // Stopped, or the old process died meanwhile (its restart takes the new launch).
      await next.stop(1000);
      this.wake?.();
      return;
    }
    this.process = next;
    const closeOld = this.handOver(next.socket, next.frames);
    this.lastCallAt = Date.now();
    this.opts.logger.info('model swapped', { model: this.name, pid: next.pid, oldPid: old.pid });
    await old.stop(graceMs);
    closeOld();
  }

  /** On demand, a start (after idle, or an idle stop on its way back) is servable too: calls wait for it. */
  override get servable(): boolean {
    return super.servable || (this.opts.onDemand === true && this.state === 'starting' && this.error === undefined);
  }

  start(): Promise<void> {
    if (this.opts.onDemand) {
      this.state = 'idle';
      return Promise.resolve();
    }
    return this.supervise();
  }

  protected override demand(): void {
    if (this.state === 'idle' && !this.stopping) void this.supervise();
  }

  /** Runs the supervision loop unless it runs already; resolves once its first start settled. */
  private supervise(): Promise<void> {
    if (this.supervising) return Promise.resolve();
    this.supervising = true;
    return new Promise((firstSettled) => void this.loop(firstSettled).finally(() => { this.supervising = false; }));
  }

  private async loop(firstSettled: () => void): Promise<void> {
    const { logger } = this.opts;
    while (!this.stopping) {
      this.state = this.attempt === 0 && !this.error ? 'starting' : this.state;
      const startedAt = Date.now();
      try {
        this.process = await this.opts.runner.start({ ...this.opts.launch, onLog: (line) => process.stderr.write(`${line}\n`) });
      } catch (error) {
        // The error first: waiting calls are told of the state change and answer with it.
        this.error = (error as Error).message;
        this.state = 'failed';
        logger.error('model failed to start', { model: this.name, error: this.error, attempt: this.attempt + 1 });
        firstSettled();
        await this.backoff();
        continue;
      }
      if (this.stopping) {
        await this.process.stop(1000);
        break;
      }
      this.connect(this.process.socket, this.process.frames);
      this.lastCallAt = Date.now();
      this.state = 'ready';
      this.error = undefined;
      logger.info('model ready', { model: this.name, pid: this.process.pid, ms: Date.now() - startedAt });
      firstSettled();
      this.watchIdleness();
      // A swap replaces the process: its predecessor's exit is not this model's.
      let watched = this.process;
      let exit = await watched.exited;
      while (this.process && this.process !== watched) {
        watched = this.process;
        exit = await watched.exited;
      }
      clearInterval(this.idleTimer);
      if (this.parking && !this.stopping) {
        this.parking = false;
        this.attempt = 0;
        this.disconnect('was stopped for idleness');
        logger.info('model stopped for idleness', { model: this.name, pid: watched.pid, idleMs: this.opts.idleTimeoutMs });
        this.process = undefined;
        // Calls that came during the stop are waiting: start again for them at once.
        if (this.activeCalls > 0) continue;
        this.state = 'idle';
        return;
      }
      const how = exit.signal ? `was killed by ${exit.signal}` : `exited with code ${exit.code}`;
      this.state = this.stopping ? 'stopped' : 'unavailable';
      this.disconnect(`process ${how}${this.stopping ? '' : '; restarting'}`);
      if (this.stopping) break;
      this.error = `process ${how}`;
      logger.error('model process died', { model: this.name, pid: watched.pid, code: exit.code, signal: exit.signal });
      if (Date.now() - startedAt > (this.opts.healthyAfterMs ?? 30_000)) this.attempt = 0;
      this.opts.onRestart?.();
      await this.backoff();
    }
    this.state = 'stopped';
    firstSettled();
  }

  /** On demand with an idle timeout: stops the process once no call has used it for that long. */
  private watchIdleness(): void {
    const timeout = this.opts.idleTimeoutMs;
    if (!this.opts.onDemand || !timeout) return;
    this.idleTimer = setInterval(() => {
      if (this.state !== 'ready' || this.activeCalls > 0 || Date.now() - this.lastCallAt < timeout) return;
      clearInterval(this.idleTimer);
      // Calls from now on wait for the next start instead of racing the stop.
      this.parking = true;
      this.state = 'starting';
      void this.process?.stop(10_000);
    }, Math.min(1000, Math.max(50, timeout / 4)));
    this.idleTimer.unref();
  }

  private backoff(): Promise<void> {
    const base = this.opts.backoffMs ?? 200;
    const delay = Math.min(base * 2 ** this.attempt, this.opts.maxBackoffMs ?? 30_000);
    this.attempt++;
    return new Promise((resolve) => {
      const timer = setTimeout(resolve, delay);
      this.wake = () => { clearTimeout(timer); resolve(); };
    });
  }

  async stop(graceMs: number): Promise<void> {
    this.stopping = true;
    clearInterval(this.idleTimer);
    this.wake?.();
    await this.process?.stop(graceMs);
    this.state = 'stopped';
  }
}
