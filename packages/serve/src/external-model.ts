import { Client, credentials } from '@grpc/grpc-js';
import type { Logger } from '@pyml/contract';
import { decodeFlag, encodeModelRef } from '@pyml/runtime/protocol';
import { type EndpointOptions, ModelEndpoint } from './model-endpoint.ts';
import { methodPath } from './raw-service.ts';

const identity = (b: Buffer): Buffer => b;

/**
 * A model served by a process serve did not start (another container of a Kubernetes pod, sharing a socket
 * volume): `--model NAME=unix:///path.sock`. Supervised for readiness only: polled with ModelReady, routed to
 * while it answers ready.
 */
export class ExternalModel extends ModelEndpoint {
  readonly source: string;
  private timer?: NodeJS.Timeout;
  private probe?: Client;

  constructor(name: string, private readonly socket: string, options: EndpointOptions, private readonly logger: Logger, private readonly intervalMs = 1000) {
    super(name, options);
    this.source = `unix://${socket}`;
  }

  async start(): Promise<void> {
    this.probe = new Client(`unix:${this.socket}`, credentials.createInsecure(), { 'grpc.initial_reconnect_backoff_ms': 100, 'grpc.max_reconnect_backoff_ms': this.intervalMs });
    await this.check();
    const tick = () => {
      if (this.state !== 'stopped') this.timer = setTimeout(() => void this.check().then(tick), this.intervalMs);
    };
    tick();
  }

  private check(): Promise<void> {
    return new Promise((resolve) => {
      const deadline = new Date(Date.now() + Math.max(500, this.intervalMs));
      this.probe!.makeUnaryRequest(methodPath('ModelReady'), identity, identity, encodeModelRef({ name: this.name }), { deadline }, (error, response) => {
        if (this.state === 'stopped') return resolve();
        const ready = !error && decodeFlag(response!);
        const why = error ? `endpoint ${this.source} does not answer: ${error.details}` : ready ? undefined : `endpoint ${this.source} says model '${this.name}' is not ready`;
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
