import { decodeModelRef, readModelName, status } from '@pyml/runtime/protocol';
import type { CallerGone } from './caller-gone.ts';
import type { FrameResult } from './frame-connection.ts';
import type { ModelEndpoint } from './model-endpoint.ts';
import type { Protocol, ServiceMetrics } from './metrics.ts';
import { RpcFailure, asRpcFailure } from './rpc-failure.ts';
import type { TrafficSplit } from './split.ts';
import { LATEST, policyFor, type VersionPolicies } from './version-policy.ts';
import { ModelVersions } from './version-set.ts';

const CODE_NAMES = Object.fromEntries(Object.entries(status).filter(([, v]) => typeof v === 'number').map(([k, v]) => [v, k])) as Record<number, string>;

/** A model endpoint with the version of the model it serves. */
export interface VersionedEndpoint {
  version: string;
  endpoint: ModelEndpoint;
}

export interface RoutingOptions {
  policies?: VersionPolicies;
  splits?: TrafficSplit[];
}

/**
 * Picks the model for a call by name and version (versions.ts: the named one, else the split's or the policy's)
 * and forwards it within the service's limits: the per-request deadline (the caller's, capped by `deadlineMs`)
 * and each model's concurrency limit. Counts requests, errors and latency per model, version and protocol.
 * Versions can be added and taken out while serving (the model repository).
 */
export class ModelRouter {
  private readonly models = new Map<string, ModelVersions>();
  /** Kept after a version leaves routing: its calls still in flight are counted under its version. */
  private readonly versionOf = new WeakMap<ModelEndpoint, string>();
  /** Per model, version and protocol, the labelled counter and histogram children (prom-client hashes a label object per call otherwise). */
  private readonly series = new Map<string, { requests: { inc(): void }; latency: { observe(v: number): void } }>();
  /** Told of each failed call of a served version, with its message (the console's recent errors). */
  onFailure?: (model: string, version: string, protocol: Protocol, code: string, message: string) => void;
  /** Told of every version added or taken out (health watches follow the endpoints). */
  private readonly listeners = new Set<() => void>();

  constructor(endpoints: VersionedEndpoint[], private readonly metrics: ServiceMetrics, readonly deadlineMs: number, private readonly routing: RoutingOptions = {}) {
    for (const e of endpoints) this.add(e.endpoint, e.version);
  }

  get endpoints(): ModelEndpoint[] {
    return [...this.models.values()].flatMap((m) => m.endpoints);
  }

  /** Every served version, highest first within each model. */
  get entries(): { name: string; version: string; endpoint: ModelEndpoint }[] {
    return [...this.models.values()].flatMap((m) => m.versions.map((version) => ({ name: m.name, version, endpoint: m.get(version)! })));
  }

  /** Every model is running, or idle and started by the first call that needs it. */
  get allReady(): boolean {
    return this.endpoints.every((e) => e.servable);
  }

  has(name: string): boolean {
    return this.models.has(name);
  }

  versions(name: string): ModelVersions | undefined {
    return this.models.get(name);
  }

  /** The version `endpoint` serves ('' for a model whose version is not known, such as an external one). */
  version(endpoint: ModelEndpoint): string {
    return this.versionOf.get(endpoint) ?? '';
  }

  /** Starts routing to a version (the next request may reach it). */
  add(endpoint: ModelEndpoint, version: string): void {
    let model = this.models.get(endpoint.name);
    if (!model) {
      const split = this.routing.splits?.find((s) => s.model === endpoint.name);
      model = new ModelVersions(endpoint.name, this.routing.policies ? policyFor(this.routing.policies, endpoint.name) : LATEST, split);
      this.models.set(endpoint.name, model);
    }
    model.add(version, endpoint);
    this.versionOf.set(endpoint, version);
    for (const listener of this.listeners) listener();
  }

  /** Stops routing to a version: calls already forwarded to it go on; it is the caller's to stop once they end. */
  remove(name: string, version: string): ModelEndpoint | undefined {
    const model = this.models.get(name);
    const endpoint = model?.remove(version);
    if (model && model.size === 0) this.models.delete(name);
    if (endpoint) for (const listener of this.listeners) listener();
    return endpoint;
  }

  /** Calls `listener` whenever versions are added or taken out; returns what stops it. */
  onChange(listener: () => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  /**
   * The model called `name` ('' means the only one, when there is only one), in the version `version` names (''
   * for the split's or the policy's pick; `key` keeps one caller on one version of a split).
   */
  find(name: string, version = '', key?: string): ModelEndpoint {
    const model = name === '' && this.models.size === 1 ? [...this.models.values()][0] : this.models.get(name);
    if (!model) throw new RpcFailure(status.NOT_FOUND, `model '${name}' is not served here (models: ${[...this.models.keys()].join(', ')})`);
    // One version: it checks a version the request names itself (as before versions); unnamed, the policy decides.
    if (model.size === 1 && (version !== '' || (!model.split && model.policy.kind === 'latest'))) return model.endpoints[0];
    return model.get(model.pick(version, key))!;
  }

  deadline(callerDeadline?: Date | number): Date {
    const cap = Date.now() + this.deadlineMs;
    const caller = callerDeadline instanceof Date ? callerDeadline.getTime() : callerDeadline;
    return new Date(caller !== undefined && Number.isFinite(caller) && caller < cap ? caller : cap);
  }

  /** ModelInfer: routes the encoded request by its fields 1 and 2 (name, version) and returns the model's encoded response as is. */
  infer(request: Buffer, protocol: Protocol, callerDeadline?: Date | number, name?: string, gone?: CallerGone, key?: string): Promise<Buffer> {
    return this.counted(protocol, () => this.inferTarget(request, name, key), (model, deadline) => model.infer(request, deadline, gone), callerDeadline);
  }

  /** REST ModelInfer with the body as it came, to a model that `takesJson`: its answer (JSON text, or protobuf when large). */
  inferJson(body: Buffer, version: string, model: ModelEndpoint, callerDeadline?: Date | number, gone?: CallerGone): Promise<FrameResult> {
    return this.counted('http', () => model, (m, deadline) => m.inferJson(body, version, deadline, gone), callerDeadline);
  }

  /** The endpoint for an encoded ModelInferRequest: the version field is read only for a model with a choice to make. */
  private inferTarget(request: Buffer, name: string | undefined, key: string | undefined): ModelEndpoint {
    const modelName = name ?? readModelName(request);
    const model = this.models.get(modelName);
    if (model && (model.size > 1 || model.split || model.policy.kind !== 'latest')) return this.find(modelName, decodeModelRef(request).version, key);
    return this.find(modelName);
  }

  /** Runs a call for the model `target()` picks, counting it, its latency and its failure. */
  private counted<T>(protocol: Protocol, target: () => ModelEndpoint, run: (model: ModelEndpoint, deadline: Date) => Promise<T>, callerDeadline?: Date | number): Promise<T> {
    // Plain promise callbacks rather than an async function: fewer hops on the path every request takes.
    const started = process.hrtime.bigint();
    let model: ModelEndpoint | undefined;
    try {
      model = target();
      const series = this.seriesOf(model, protocol);
      series.requests.inc();
      const counted = model;
      return run(model, this.deadline(callerDeadline)).then(
        (response) => {
          series.latency.observe(Number(process.hrtime.bigint() - started) / 1e9);
          return response;
        },
        (error: unknown) => {
          throw this.failed(error, counted, protocol, started);
        },
      );
    } catch (error) {
      return Promise.reject(this.failed(error, model, protocol, started));
    }
  }

  /** Counts a failed call (and its latency, for a known model) and returns it as an RpcFailure. */
  private failed(error: unknown, model: ModelEndpoint | undefined, protocol: Protocol, started: bigint): RpcFailure {
    const failure = asRpcFailure(error);
    // Unknown names and versions are not counted: a client could make up unbounded label values.
    if (model) {
      this.metrics.errors.inc({ model: model.name, version: this.version(model), protocol, code: CODE_NAMES[failure.code] ?? String(failure.code) });
      this.seriesOf(model, protocol).latency.observe(Number(process.hrtime.bigint() - started) / 1e9);
      this.onFailure?.(model.name, this.version(model), protocol, CODE_NAMES[failure.code] ?? String(failure.code), failure.message);
    }
    return failure;
  }

  private seriesOf(model: ModelEndpoint, protocol: Protocol) {
    const version = this.version(model);
    const key = `${protocol}:${model.name}:${version}`;
    let series = this.series.get(key);
    if (!series) {
      const labels = { model: model.name, version, protocol };
      series = { requests: this.metrics.requests.labels(labels), latency: this.metrics.latency.labels(labels) };
      this.series.set(key, series);
    }
    return series;
  }
}
