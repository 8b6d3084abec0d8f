import { status } from '@pyml/runtime/protocol';
import type { ModelEndpoint } from './model-endpoint.ts';
import { RpcFailure } from './rpc-failure.ts';
import { pickShare, type TrafficSplit } from './split.ts';
import { compareVersions, type VersionPolicy } from './version-policy.ts';

/**
 * The versions of one model name served side by side, and which of them answers a request: the version it names,
 * else the split's pick (by routing key, or at random), else the policy's default (the highest, or the pinned one).
 * Versions come and go while serving (the model repository): a change takes effect for the next request.
 */
export class ModelVersions {
  private readonly byVersion = new Map<string, ModelEndpoint>();
  /** Highest first: the default of the `latest` policy is the first. */
  private ordered: string[] = [];

  constructor(readonly name: string, readonly policy: VersionPolicy, readonly split?: TrafficSplit) {}

  get size(): number {
    return this.byVersion.size;
  }

  get versions(): string[] {
    return this.ordered;
  }

  get endpoints(): ModelEndpoint[] {
    return this.ordered.map((v) => this.byVersion.get(v)!);
  }

  get(version: string): ModelEndpoint | undefined {
    return this.byVersion.get(version);
  }

  add(version: string, endpoint: ModelEndpoint): void {
    if (this.byVersion.has(version)) throw new Error(`version '${version}' of model '${this.name}' is served already`);
    this.byVersion.set(version, endpoint);
    this.ordered = [...this.byVersion.keys()].sort((a, b) => compareVersions(b, a));
  }

  /** Takes a version out of routing (the next request no longer reaches it); returns its endpoint. */
  remove(version: string): ModelEndpoint | undefined {
    const endpoint = this.byVersion.get(version);
    this.byVersion.delete(version);
    this.ordered = this.ordered.filter((v) => v !== version);
    return endpoint;
  }

  /** The version an unversioned request gets from the policy alone (no split), or why there is none. */
  get defaultVersion(): string | RpcFailure {
    if (this.policy.kind === 'pinned') {
      if (this.byVersion.has(this.policy.version)) return this.policy.version;
      return new RpcFailure(status.UNAVAILABLE, `model '${this.name}' is pinned to version '${this.policy.version}', which is not loaded (versions: ${this.ordered.join(', ') || 'none'})`);
    }
    return this.ordered[0] ?? new RpcFailure(status.UNAVAILABLE, `model '${this.name}' has no version loaded`);
  }

  /** The version answering a request that names `version` ('' for none), with its routing key if it has one. */
  pick(version: string, key?: string): string {
    if (version !== '') {
      if (this.byVersion.has(version)) return version;
      throw new RpcFailure(status.NOT_FOUND, `model '${this.name}' version '${version}' is not served here (versions: ${this.ordered.join(', ') || 'none'})`);
    }
    const chosen = this.split ? pickShare(this.split, (v) => this.byVersion.has(v), key) : undefined;
    if (chosen !== undefined) return chosen;
    const fallback = this.defaultVersion;
    if (fallback instanceof RpcFailure) throw fallback;
    return fallback;
  }
}
