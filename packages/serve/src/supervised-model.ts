import type { Logger } from '@pyml/contract';
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
}

/**
 * A model process kept running: started through a runner, restarted with exponential backoff when it dies or
 * fails to start, while the rest of the service keeps serving. Init errors are kept for ModelMetadata and logs.
 */
export class SupervisedModel extends ModelEndpoint {
  private process?: ModelProcess;
  private stopping = false;
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

  start(): Promise<void> {
    return new Promise((firstSettled) => void this.loop(firstSettled));
  }

  private async loop(firstSettled: () => void): Promise<void> {
    const { logger } = this.opts;
    while (!this.stopping) {
      this.state = this.attempt === 0 && !this.error ? 'starting' : this.state;
      const startedAt = Date.now();
      try {
        this.process = await this.opts.runner.start({ ...this.opts.launch, onLog: (line) => process.stderr.write(`${line}\n`) });
      } catch (error) {
        this.state = 'failed';
        this.error = (error as Error).message;
        logger.error('model failed to start', { model: this.name, error: this.error, attempt: this.attempt + 1 });
        firstSettled();
        await this.backoff();
        continue;
      }
      if (this.stopping) {
        await this.process.stop(1000);
        break;
      }
      this.connect(this.process.socket);
      this.state = 'ready';
      this.error = undefined;
      logger.info('model ready', { model: this.name, pid: this.process.pid, ms: Date.now() - startedAt });
      firstSettled();
      const exit = await this.process.exited;
      const how = exit.signal ? `was killed by ${exit.signal}` : `exited with code ${exit.code}`;
      this.state = this.stopping ? 'stopped' : 'unavailable';
      this.disconnect(`process ${how}${this.stopping ? '' : '; restarting'}`);
      if (this.stopping) break;
      this.error = `process ${how}`;
      logger.error('model process died', { model: this.name, pid: this.process.pid, code: exit.code, signal: exit.signal });
      if (Date.now() - startedAt > (this.opts.healthyAfterMs ?? 30_000)) this.attempt = 0;
      this.opts.onRestart?.();
      await this.backoff();
    }
    this.state = 'stopped';
    firstSettled();
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
    this.wake?.();
    await this.process?.stop(graceMs);
    this.state = 'stopped';
  }
}
