import type { Logger } from '@pyml/contract';
import { Metadata, decodeFlag, encodeModelRef } from '@pyml/runtime/protocol';
import { ModelConnection } from './model-connection.ts';
import { type EndpointOptions, ModelEndpoint } from './model-endpoint.ts';
import { methodPath } from './raw-service.ts';

/**
 * A model served by a process serve did not start (another container of a Kubernetes pod, sharing a socket
 * volume): `--model NAME=unix:///path.sock`. Supervised for readiness only: polled with ModelReady, routed to
 * while it answers ready.
 */
export class ExternalModel extends ModelEndpoint {
  readonly source: string;
  private timer?: NodeJS.Timeout;
  /** Its own connection for the readiness probe (the calls' connection is made once the model is ready). */
  private probe?: ModelConnection;

  constructor(name: string, private readonly socket: string, options: EndpointOptions, private readonly logger: Logger, private readonly intervalMs = 1000) {
    super(name, options);
    this.source = `unix://${socket}`;
  }

  async start(): Promise<void> {
    this.probe = new ModelConnection(this.socket, { maxMessageBytes: 1 << 20 });
    await this.check();
    const tick = () => {
      if (this.state !== 'stopped') this.timer = setTimeout(() => void this.check().then(tick), this.intervalMs);
    };
    tick();
  }

  private check(): Promise<void> {
    return new Promise((resolve) => {
      const deadline = new Date(Date.now() + Math.max(500, this.intervalMs));
      this.probe!.call(methodPath('ModelReady'), encodeModelRef({ name: this.name }), deadline, new Metadata(), (error, response) => {
        if (this.state === 'stopped') return resolve();
        let ready = false;
        try {
          ready = !error && decodeFlag(response!);
        } catch {
          // Not a BoolResponse: not ready.
        }
        const why = error ? `endpoint ${this.source} does not answer: ${error.message}` : ready ? undefined : `endpoint ${this.source} says model '${this.name}' is not ready`;
        if (ready && this.state !== 'ready') {
          this.connect(this.socket);
          this.state = 'ready';
          this.error = undefined;
          this.logger.info('model ready', { model: this.name, endpoint: this.source });
        } else if (!ready && this.state !== 'unavailable') {
          if (this.state === 'ready') this.disconnect(`became unavailable: ${why}`);
          this.state = 'unavailable';
          this.error = why;
          this.logger.warn('model not ready', { model: this.name, endpoint: this.source, reason: why });
        }
        resolve();
      });
    });
  }

  async stop(): Promise<void> {
    clearTimeout(this.timer);
    this.timer = undefined;
    this.disconnect('is stopping');
    this.probe?.close();
    this.state = 'stopped';
  }
}
