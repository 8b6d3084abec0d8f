import { status } from '@pyml/runtime/protocol';
import { readModelName } from '@pyml/runtime/protocol';
import type { CallerGone } from './caller-gone.ts';
import type { FrameResult } from './frame-connection.ts';
import type { ModelEndpoint } from './model-endpoint.ts';
import type { Protocol, ServiceMetrics } from './metrics.ts';
import { RpcFailure, asRpcFailure } from './rpc-failure.ts';

const CODE_NAMES = Object.fromEntries(Object.entries(status).filter(([, v]) => typeof v === 'number').map(([k, v]) => [v, k])) as Record<number, string>;

/**
 * Picks the model for a call by name and forwards it within the service's limits: the per-request deadline (the
 * caller's, capped by `deadlineMs`) and each model's concurrency limit. Counts requests, errors and latency.
 */
export class ModelRouter {
  private readonly models = new Map<string, ModelEndpoint>();
  /** Per model and protocol, the labelled counter and histogram children (prom-client hashes a label object per call otherwise). */
  private readonly series = new Map<string, { requests: { inc(): void }; latency: { observe(v: number): void } }>();

  constructor(endpoints: ModelEndpoint[], private readonly metrics: ServiceMetrics, readonly deadlineMs: number) {
    for (const e of endpoints) this.models.set(e.name, e);
  }

  get endpoints(): ModelEndpoint[] {
    return [...this.models.values()];
  }

  /** Every model is running, or idle and started by the first call that needs it. */
  get allReady(): boolean {
    return this.endpoints.every((e) => e.servable);
  }

  has(name: string): boolean {
    return this.models.has(name);
  }

  /** The model called `name`; '' means the only one, when there is only one. */
  find(name: string): ModelEndpoint {
    const model = name === '' && this.models.size === 1 ? this.endpoints[0] : this.models.get(name);
    if (!model) throw new RpcFailure(status.NOT_FOUND, `model '${name}' is not served here (models: ${[...this.models.keys()].join(', ')})`);
    return model;
  }

  deadline(callerDeadline?: Date | number): Date {
    const cap = Date.now() + this.deadlineMs;
    const caller = callerDeadline instanceof Date ? callerDeadline.getTime() : callerDeadline;
    return new Date(caller !== undefined && Number.isFinite(caller) && caller < cap ? caller : cap);
  }

  /** ModelInfer: routes the encoded request by its field 1 and returns the model's encoded response as is. */
  infer(request: Buffer, protocol: Protocol, callerDeadline?: Date | number, name?: string, gone?: CallerGone): Promise<Buffer> {
    return this.counted(protocol, () => name ?? readModelName(request), (model, deadline) => model.infer(request, deadline, gone), callerDeadline);
  }

  /** REST ModelInfer with the body as it came, to a model that `takesJson`: its answer (JSON text, or protobuf when large). */
  inferJson(body: Buffer, version: string, model: ModelEndpoint, callerDeadline?: Date | number, gone?: CallerGone): Promise<FrameResult> {
    return this.counted('http', () => model.name, (m, deadline) => m.inferJson(body, version, deadline, gone), callerDeadline);
  }

  /** Runs a call for the model `nameOf()` names, counting it, its latency and its failure. */
  private counted<T>(protocol: Protocol, nameOf: () => string, run: (model: ModelEndpoint, deadline: Date) => Promise<T>, callerDeadline?: Date | number): Promise<T> {
    // Plain promise callbacks rather than an async function: fewer hops on the path every request takes.
    const started = process.hrtime.bigint();
    let label = '';
    try {
      label = nameOf();
      const model = this.find(label);
      label = model.name;
      const series = this.seriesOf(label, protocol);
      series.requests.inc();
      return run(model, this.deadline(callerDeadline)).then(
        (response) => {
          series.latency.observe(Number(process.hrtime.bigint() - started) / 1e9);
          return response;
        },
        (error: unknown) => {
          throw this.failed(error, label, protocol, started);
        },
      );
    } catch (error) {
      return Promise.reject(this.failed(error, label, protocol, started));
    }
  }

  /** Counts a failed call (and its latency, for a known model) and returns it as an RpcFailure. */
  private failed(error: unknown, label: string, protocol: Protocol, started: bigint): RpcFailure {
    const failure = asRpcFailure(error);
    // Unknown names are not counted per model: a client could make up unbounded label values.
    if (failure.code !== status.NOT_FOUND || this.models.has(label)) this.metrics.errors.inc({ model: label, protocol, code: CODE_NAMES[failure.code] ?? String(failure.code) });
    if (this.models.has(label)) this.seriesOf(label, protocol).latency.observe(Number(process.hrtime.bigint() - started) / 1e9);
    return failure;
  }

  private seriesOf(model: string, protocol: Protocol) {
    const key = `${protocol}:${model}`;
    let series = this.series.get(key);
    if (!series) {
      const labels = { model, protocol };
      series = { requests: this.metrics.requests.labels(labels), latency: this.metrics.latency.labels(labels) };
      this.series.set(key, series);
    }
    return series;
  }
}
