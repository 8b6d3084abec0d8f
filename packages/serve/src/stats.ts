import type { ServiceMetrics } from './metrics.ts';

/** One interval of a model's traffic: rates over it, and latency quantiles of the requests it answered. */
export interface StatsPoint {
  /** End of the interval (ms since the epoch). */
  t: number;
  requestsPerS: number;
  errorsPerS: number;
  /** null when no request was answered in the interval. */
  p50Ms: number | null;
  p99Ms: number | null;
}

export interface RecentError {
  at: number;
  /** The version that failed ('' when the model has no version, e.g. an external one). */
  version: string;
  protocol: string;
  /** The gRPC status code's name (as /metrics labels it). */
  code: string;
  message: string;
}

export interface ModelStats {
  requests: number;
  errors: number;
  points: StatsPoint[];
  recentErrors: RecentError[];
}

export interface StatsSnapshot {
  intervalMs: number;
  now: number;
  models: Record<string, ModelStats>;
}

export interface StatsOptions {
  /** Shortest interval a point covers (default 2 s). */
  intervalMs?: number;
  /** Points kept per model (default 90: three minutes at 2 s). */
  points?: number;
  /** Recent errors kept per model (default 20). */
  errors?: number;
}

/** Per model: requests and errors so far, and latency histogram counts by upper bound (cumulative, as Prometheus keeps them). */
interface Totals {
  requests: number;
  errors: number;
  buckets: Map<number, number>;
}

/** Longest error message kept: a model's message can be long, and twenty are kept per model. */
const MESSAGE_CHARS = 500;

/**
 * Request rate, error rate and p50/p99 latency per model over time, from the service's own Prometheus metrics
 * (the same counters and histogram /metrics serves, summed over protocol, version and code), for the console's
 * charts; and each model's recent errors with their messages, which the metrics do not keep.
 *
 * Points are taken when someone asks (at most one per interval), not on a timer: a service nobody watches does no
 * work for this. After a gap of more than a few intervals the next call only takes a new baseline, so one point
 * never averages minutes of traffic.
 */
export class ServiceStats {
  private readonly intervalMs: number;
  private readonly keepPoints: number;
  private readonly keepErrors: number;
  private readonly points = new Map<string, StatsPoint[]>();
  private readonly errors = new Map<string, RecentError[]>();
  private last?: { t: number; totals: Map<string, Totals> };
  private sampling?: Promise<void>;

  constructor(private readonly metrics: ServiceMetrics, options: StatsOptions = {}) {
    this.intervalMs = options.intervalMs ?? 2_000;
    this.keepPoints = options.points ?? 90;
    this.keepErrors = options.errors ?? 20;
  }

  /** Keeps a failed request's message (for a model the service serves: unknown names are not kept). */
  noteError(model: string, version: string, protocol: string, code: string, message: string): void {
    let list = this.errors.get(model);
    if (!list) this.errors.set(model, (list = []));
    list.push({ at: Date.now(), version, protocol, code, message: message.length > MESSAGE_CHARS ? `${message.slice(0, MESSAGE_CHARS)}…` : message });
    if (list.length > this.keepErrors) list.shift();
  }

  async snapshot(): Promise<StatsSnapshot> {
    if (!this.last || Date.now() - this.last.t >= this.intervalMs * 0.9) {
      // Viewers asking at once share one sample.
      this.sampling ??= this.sample().finally(() => { this.sampling = undefined; });
    }
    await this.sampling;
    const models: Record<string, ModelStats> = {};
    for (const [model, totals] of this.last?.totals ?? []) {
      models[model] = { requests: totals.requests, errors: totals.errors, points: this.points.get(model) ?? [], recentErrors: this.errors.get(model) ?? [] };
    }
    for (const [model, recentErrors] of this.errors) models[model] ??= { requests: 0, errors: 0, points: [], recentErrors };
    return { intervalMs: this.intervalMs, now: Date.now(), models };
  }

  private async sample(): Promise<void> {
    const t = Date.now();
    const totals = await this.totals();
    const last = this.last;
    this.last = { t, totals };
    // The first call, or one after a long gap: a baseline only.
    if (!last || t - last.t > this.intervalMs * 5) return;
    const seconds = (t - last.t) / 1000;
    for (const [model, now] of totals) {
      const before = last.totals.get(model) ?? { requests: 0, errors: 0, buckets: new Map() };
      const answered = new Map([...now.buckets].map(([le, n]) => [le, Math.max(0, n - (before.buckets.get(le) ?? 0))]));
      const point: StatsPoint = {
        t,
        requestsPerS: Math.max(0, now.requests - before.requests) / seconds,
        errorsPerS: Math.max(0, now.errors - before.errors) / seconds,
        p50Ms: quantileMs(answered, 0.5),
        p99Ms: quantileMs(answered, 0.99),
      };
      let list = this.points.get(model);
      if (!list) this.points.set(model, (list = []));
      list.push(point);
      if (list.length > this.keepPoints) list.shift();
    }
  }

  /** Each model's counters now, summed over every other label. */
  private async totals(): Promise<Map<string, Totals>> {
    const [requests, errors, latency] = await Promise.all([this.metrics.requests.get(), this.metrics.errors.get(), this.metrics.latency.get()]);
    const totals = new Map<string, Totals>();
    const of = (model: string) => {
      let t = totals.get(model);
      if (!t) totals.set(model, (t = { requests: 0, errors: 0, buckets: new Map() }));
      return t;
    };
    for (const v of requests.values) of(String(v.labels.model)).requests += v.value;
    for (const v of errors.values) of(String(v.labels.model)).errors += v.value;
    for (const v of latency.values as { value: number; labels: Record<string, string | number>; metricName?: string }[]) {
      if (!v.metricName?.endsWith('_bucket')) continue;
      const le = v.labels.le === '+Inf' ? Infinity : Number(v.labels.le);
      const buckets = of(String(v.labels.model)).buckets;
      buckets.set(le, (buckets.get(le) ?? 0) + v.value);
    }
    return totals;
  }
}

/**
 * The q-quantile of a histogram's cumulative bucket counts, in ms, interpolated linearly within its bucket (as
 * Prometheus's histogram_quantile does); in the open-ended last bucket, the highest finite bound.
 */
export function quantileMs(cumulative: Map<number, number>, q: number): number | null {
  const bounds = [...cumulative.keys()].sort((a, b) => a - b);
  const total = cumulative.get(Infinity) ?? (bounds.length ? cumulative.get(bounds[bounds.length - 1]) ?? 0 : 0);
  if (total <= 0) return null;
  const rank = q * total;
  let lower = 0;
  let below = 0;
  for (const upper of bounds) {
    const count = cumulative.get(upper) ?? 0;
    if (count >= rank) {
      if (upper === Infinity) return lower * 1000;
      const share = count > below ? (rank - below) / (count - below) : 1;
      return (lower + (upper - lower) * share) * 1000;
    }
    lower = upper;
    below = count;
  }
  return lower * 1000;
}
