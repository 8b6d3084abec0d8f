import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';

export type Protocol = 'grpc' | 'http';

export interface ModelGaugeSource {
  name: string;
  /** The model's version ('' when not known, such as an external model's). */
  version: string;
  servable: boolean;
  state: string;
  activeCalls: number;
}

/** Prometheus metrics of the prediction service, on its own registry (served at /metrics). */
export class ServiceMetrics {
  readonly registry = new Registry();
  readonly requests = new Counter({ name: 'pyml_requests_total', help: 'Inference requests received, per model, version and protocol', labelNames: ['model', 'version', 'protocol'], registers: [this.registry] });
  readonly errors = new Counter({ name: 'pyml_request_errors_total', help: 'Inference requests that failed, per model, version, protocol and gRPC status code name', labelNames: ['model', 'version', 'protocol', 'code'], registers: [this.registry] });
  readonly latency = new Histogram({
    name: 'pyml_request_duration_seconds', help: 'Inference request latency in the service, per model, version and protocol', labelNames: ['model', 'version', 'protocol'],
    buckets: [0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10], registers: [this.registry],
  });
  readonly batchRows = new Histogram({
    name: 'pyml_batch_rows', help: 'Rows in each merged call the service sent to the model (adaptive batching), per model and version', labelNames: ['model', 'version'],
    buckets: [1, 2, 4, 8, 16, 32, 64, 128, 256, 512], registers: [this.registry],
  });
  readonly restarts = new Counter({ name: 'pyml_model_restarts_total', help: 'Times the model process died and was restarted, per model and version', labelNames: ['model', 'version'], registers: [this.registry] });

  /** `models` is read at scrape time, so the gauges are never stale. */
  constructor(models: () => ModelGaugeSource[]) {
    collectDefaultMetrics({ register: this.registry, prefix: 'pyml_serve_' });
    new Gauge({
      name: 'pyml_model_ready', help: '1 when the model takes calls (running, or idle and started by the first call)', labelNames: ['model', 'version'], registers: [this.registry],
      collect() { this.reset(); for (const m of models()) this.set({ model: m.name, version: m.version }, m.servable ? 1 : 0); },
    });
    new Gauge({
      name: 'pyml_model_running', help: '1 while the model has a process (0 when idle: on-demand models start at their first call)', labelNames: ['model', 'version'], registers: [this.registry],
      collect() { this.reset(); for (const m of models()) this.set({ model: m.name, version: m.version }, m.state === 'ready' ? 1 : 0); },
    });
    new Gauge({
      name: 'pyml_model_in_flight', help: 'Requests in flight to the model', labelNames: ['model', 'version'], registers: [this.registry],
      collect() { this.reset(); for (const m of models()) this.set({ model: m.name, version: m.version }, m.activeCalls); },
    });
  }
}
