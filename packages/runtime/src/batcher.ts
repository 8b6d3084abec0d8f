import { type ContractKind, type Signature, type Tensor, type Tensors, elementCount, typedArrayFor } from '@pyml/contract';
import { ModelError } from './errors.ts';
import type { ModelHost } from './model-host.ts';
import type { PymlManifest } from './manifest.ts';

export interface BatchingOptions {
  /** Most rows merged into one model call; ≤ 1 turns batching off. */
  maxBatchSize: number;
  /** Longest a request waits for company before its batch runs. */
  maxBatchDelayMs: number;
}

/** What the gRPC front end calls: a ModelHost, or an AdaptiveBatcher in front of one. */
export interface Predictor {
  predict(inputs: Tensors): Promise<Tensors>;
}

/**
 * What a batcher merges calls for: the model in this process (a ModelHost), or, in `pyml serve`, a model process
 * reached over its socket.
 */
export interface BatchTarget {
  readonly signature: Signature;
  /** Throws for inputs that do not fit the signature: such a request fails alone, before it joins a batch. */
  checkInputs(inputs: Tensors): void;
  run(inputs: Tensors): Promise<Tensors>;
}

interface Waiting {
  inputs: Tensors;
  rows: number;
  resolve(outputs: Tensors): void;
  reject(error: unknown): void;
}

interface Queue {
  items: Waiting[];
  rows: number;
  timer?: NodeJS.Timeout;
  soon?: NodeJS.Immediate;
  since?: number;
}

/**
 * Adaptive batching: concurrent requests are merged along dimension 0 into one model call, and each caller gets
 * back exactly its own rows. Requests are checked before they join a batch, so a bad request fails alone; only
 * requests whose per-row shapes agree are merged.
 *
 * When to run a batch: at once when it is full. When the model is idle and the last batch was a lone request (no
 * concurrent callers seen), after the requests that arrived in the same event-loop turn have joined (setImmediate):
 * a lone caller never waits. When the last batch had company (callers are concurrent), once no request has arrived
 * for 1 ms (the burst is over) or `maxBatchDelayMs` after the first one queued, so more of them join: a model whose
 * call has a fixed cost (one pass over the weights, whatever the rows) then runs fewer, fuller batches, and its
 * process leaves more CPU to the rest. While the model is busy, also when a running batch finishes (what queued
 * meanwhile goes next).
 */
export class AdaptiveBatcher implements Predictor {
  private readonly queues = new Map<string, Queue>();
  /** Model calls this batcher has running. */
  private running = 0;
  /** Requests in the last batch run: more than one means callers are concurrent, and waiting for company pays. */
  private lastBatchRequests = 1;

  constructor(private readonly host: BatchTarget, readonly options: BatchingOptions) {}

  /** Tensor models whose inputs and outputs all have a free first dimension can be batched. */
  static supports(kind: ContractKind, signature: Signature): boolean {
    const all = [...signature.inputs, ...signature.outputs];
    return kind === 'tensor' && signature.inputs.length > 0 && all.every((s) => s.shape.length >= 1 && s.shape[0] === -1);
  }

  /** The batching a model gets: what the caller says, else the image's `serving` settings, else none (size 1). */
  static options(serving: PymlManifest['serving'], overrides?: Partial<BatchingOptions>): BatchingOptions {
    return {
      maxBatchSize: overrides?.maxBatchSize ?? serving?.maxBatchSize ?? 1,
      maxBatchDelayMs: overrides?.maxBatchDelayMs ?? serving?.maxBatchDelayMs ?? 2,
    };
  }

  /** A batcher when the manifest asks for one and the signature allows it; the host itself otherwise. */
  static for(host: ModelHost, overrides?: Partial<BatchingOptions>): Predictor {
    // PYML_MAX_BATCH_SIZE / PYML_MAX_BATCH_DELAY_MS: how `pyml serve` (or a pod spec) overrides the image's settings.
    const options = AdaptiveBatcher.options(host.manifest.serving, {
      maxBatchSize: overrides?.maxBatchSize ?? envNumber('PYML_MAX_BATCH_SIZE'),
      maxBatchDelayMs: overrides?.maxBatchDelayMs ?? envNumber('PYML_MAX_BATCH_DELAY_MS'),
    });
    if (options.maxBatchSize <= 1 || !AdaptiveBatcher.supports(host.kind, host.signature)) return host;
    return new AdaptiveBatcher(host, options);
  }

  async predict(inputs: Tensors): Promise<Tensors> {
    this.host.checkInputs(inputs);
    const names = this.host.signature.inputs.map((s) => s.name);
    const rows = inputs[names[0]].shape[0];
    // Inputs must agree on the row count to be split back by rows.
    if (names.some((n) => inputs[n].shape[0] !== rows) || rows >= this.options.maxBatchSize) return this.tracked(this.host.run(inputs));
    const key = names.map((n) => inputs[n].shape.slice(1).join('x')).join('|');
    let queue = this.queues.get(key);
    if (!queue) this.queues.set(key, (queue = { items: [], rows: 0 }));
    if (queue.rows + rows > this.options.maxBatchSize) this.flush(queue);
    return new Promise<Tensors>((resolve, reject) => {
      queue.items.push({ inputs, rows, resolve, reject });
      queue.rows += rows;
      if (queue.rows >= this.options.maxBatchSize) this.flush(queue);
      else if (this.running === 0 && this.lastBatchRequests <= 1) queue.soon ??= setImmediate(() => this.flush(queue));
      else {
        queue.since ??= Date.now();
        if (queue.timer) clearTimeout(queue.timer);
        const left = this.options.maxBatchDelayMs - (Date.now() - queue.since);
        queue.timer = setTimeout(() => this.flush(queue), Math.max(0, Math.min(1, left)));
      }
    });
  }

  /** Counts a model call as running while it is; when the last one ends, what queued meanwhile runs at once. */
  private async tracked<T>(call: Promise<T>): Promise<T> {
    this.running++;
    try {
      return await call;
    } finally {
      if (--this.running === 0) for (const queue of this.queues.values()) if (queue.items.length) this.flush(queue);
    }
  }

  private flush(queue: Queue): void {
    const items = queue.items;
    if (queue.timer) clearTimeout(queue.timer);
    if (queue.soon) clearImmediate(queue.soon);
    queue.timer = undefined;
    queue.soon = undefined;
    queue.since = undefined;
    queue.items = [];
    queue.rows = 0;
    if (items.length === 0) return;
    this.lastBatchRequests = items.length;
    void this.runBatch(items);
  }

  private async runBatch(items: Waiting[]): Promise<void> {
    if (items.length === 1) {
      const [only] = items;
      return this.tracked(this.host.run(only.inputs)).then(only.resolve, only.reject);
    }
    try {
      const total = items.reduce((n, w) => n + w.rows, 0);
      const merged: Tensors = {};
      for (const spec of this.host.signature.inputs) merged[spec.name] = concatRows(items.map((w) => w.inputs[spec.name]));
      const outputs = await this.tracked(this.host.run(merged));
      for (const [name, t] of Object.entries(outputs)) {
        if (t.shape[0] !== total) throw new ModelError(`model output '${name}' has ${t.shape[0]} rows for a merged batch of ${total} rows; batched models must return one row per input row`, { tensor: name });
      }
      let row = 0;
      for (const w of items) {
        const mine: Tensors = {};
        for (const [name, t] of Object.entries(outputs)) mine[name] = sliceRows(t, row, w.rows);
        row += w.rows;
        w.resolve(mine);
      }
    } catch (error) {
      for (const w of items) w.reject(error);
    }
  }
}

function envNumber(name: string): number | undefined {
  const text = process.env[name];
  if (text === undefined || text === '') return undefined;
  const n = Number(text);
  if (!Number.isFinite(n) || n < 0) throw new Error(`${name} must be a non-negative number, got '${text}'`);
  return n;
}

/** Concatenates tensors with equal per-row shapes along dimension 0. */
export function concatRows(parts: Tensor[]): Tensor {
  const first = parts[0];
  const shape = [parts.reduce((n, t) => n + t.shape[0], 0), ...first.shape.slice(1)];
  if (first.dtype === 'BYTES') return { dtype: first.dtype, shape, data: parts.flatMap((t) => t.data as string[]) };
  const out = new (typedArrayFor(first.dtype)!)(elementCount(shape)) as unknown as { set(a: ArrayLike<unknown>, o: number): void };
  let at = 0;
  for (const t of parts) {
    out.set(t.data as ArrayLike<unknown>, at);
    at += t.data.length;
  }
  return { dtype: first.dtype, shape, data: out } as unknown as Tensor;
}

/** Rows [start, start+count) of a tensor, as a view where the data allows. */
export function sliceRows(t: Tensor, start: number, count: number): Tensor {
  const per = elementCount(t.shape.slice(1));
  const shape = [count, ...t.shape.slice(1)];
  const data = Array.isArray(t.data)
    ? t.data.slice(start * per, (start + count) * per)
    : (t.data as Float32Array).subarray(start * per, (start + count) * per);
  return { dtype: t.dtype, shape, data } as Tensor;
}
