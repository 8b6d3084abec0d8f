import { setTimeout as sleep } from 'node:timers/promises';
import { AuthError, basicHeader, fetchBearerToken, parseChallenge, type Challenge } from './auth.ts';
import { findCredentials, type Credentials } from './docker-config.ts';
import { ConnectionError, describeErrorBody, discardBody, httpRequest, type HttpResponse } from './http.ts';
import { registryBaseUrl, type ImageReference } from './reference.ts';

export interface RegistryClientOptions {
  /** `pull` or `pull,push`: what the Bearer token is asked for. */
  actions: string;
  /** Other repositories on the same registry this client reads from (cross-repository mounts). */
  alsoPull?: string[];
  /** Attempts per request on 5xx, 429 and connection errors (default 4, or PYML_REGISTRY_ATTEMPTS). */
  attempts?: number;
  onRetry?: (message: string) => void;
}

export interface SendOptions {
  method: string;
  /** A path under the registry (`/v2/…`) or an absolute URL (an upload Location). */
  url: string;
  headers?: Record<string, string | number>;
  /** Made anew for every attempt, since a stream can be read once. */
  body?: () => Buffer | NodeJS.ReadableStream | Promise<Buffer | NodeJS.ReadableStream>;
  onBodyProgress?: (bytes: number) => void;
  /** Statuses the caller handles; any other is an error. */
  expect: number[];
  /** Whether to retry this one request (false for steps of a multi-request upload, which retries as a whole). */
  retry?: boolean;
  /** What the request is for, in error messages: "uploading layer sha256:…". */
  what: string;
}

const RETRY_STATUSES = new Set([408, 429, 500, 502, 503, 504]);

/**
 * Speaks the OCI distribution API to one repository: authentication on challenge (Basic or Bearer, with
 * credentials from the Docker config), retries with backoff, and error messages that say what failed where.
 */
export class RegistryClient {
  readonly baseUrl: string;
  readonly attempts: number;
  private authorization?: string;
  private credentials?: Credentials | null;

  constructor(readonly ref: ImageReference, private readonly options: RegistryClientOptions) {
    this.baseUrl = registryBaseUrl(ref.registry);
    this.attempts = options.attempts ?? (Number(process.env.PYML_REGISTRY_ATTEMPTS) || 4);
  }

  get repository(): string {
    return this.ref.repository;
  }

  path(suffix: string): string {
    return `/v2/${this.ref.repository}${suffix}`;
  }

  async send(options: SendOptions): Promise<HttpResponse> {
    if (options.retry === false) return this.sendOnce(options);
    return withRetries(this.attempts, options.what, this.ref.registry, (m) => this.options.onRetry?.(m), () => this.sendOnce(options));
  }

  private async sendOnce(options: SendOptions): Promise<HttpResponse> {
    const url = options.url.startsWith('http') ? options.url : new URL(options.url, this.baseUrl).toString();
    let res = await this.exchange(url, options);
    if (res.status === 401) {
      const challenge = parseChallenge(res.headers['www-authenticate'] as string | undefined);
      await discardBody(res);
      const hadAuthorization = Boolean(this.authorization);
      await this.authenticate(challenge);
      res = await this.exchange(url, options);
      if (res.status === 401) {
        const detail = await describeErrorBody(res);
        const credentials = this.credentials;
        if (!credentials) throw new AuthError(`registry ${this.ref.registry} requires authentication and there are no credentials for it: run 'docker login ${this.ref.registry}' or add it to the Docker config's "auths"`);
        throw new AuthError(`registry ${this.ref.registry} refused the credentials for user "${credentials.username ?? '<token>'}" (from ${credentials.from})${hadAuthorization ? ' after they had worked' : ''}: ${detail || '401 Unauthorized'}`);
      }
    }
    if (res.status === 403) {
      throw new AuthError(`registry ${this.ref.registry} denied ${options.what} in ${this.ref.repository} (403): ${await describeErrorBody(res)}`);
    }
    if (!options.expect.includes(res.status)) {
      const detail = await describeErrorBody(res);
      throw new StatusError(res.status, `${options.what}: ${options.method} ${new URL(url).pathname} answered ${res.status}${detail ? `: ${detail}` : ''}`);
    }
    return res;
  }

  private async exchange(url: string, options: SendOptions): Promise<HttpResponse> {
    const body = options.body ? await options.body() : undefined;
    const sameHost = new URL(url).origin === new URL(this.baseUrl).origin;
    const headers: Record<string, string | number> = { ...options.headers, ...(this.authorization && sameHost ? { Authorization: this.authorization } : {}) };
    if (body && Buffer.isBuffer(body)) headers['Content-Length'] = body.length;
    return httpRequest({ method: options.method, url, headers, body, onBodyProgress: options.onBodyProgress });
  }

  private async authenticate(challenge: Challenge | undefined): Promise<void> {
    if (this.credentials === undefined) this.credentials = (await findCredentials(this.ref.registry)) ?? null;
    const credentials = this.credentials ?? undefined;
    if (!challenge) throw new AuthError(`registry ${this.ref.registry} answered 401 without a usable WWW-Authenticate challenge`);
    if (challenge.scheme === 'basic') {
      if (!credentials) throw new AuthError(`registry ${this.ref.registry} requires authentication and there are no credentials for it: run 'docker login ${this.ref.registry}' or add it to the Docker config's "auths"`);
      if (credentials.identityToken && credentials.password === undefined) throw new AuthError(`registry ${this.ref.registry} wants Basic auth but ${credentials.from} holds only an identity token`);
      this.authorization = basicHeader(credentials);
      return;
    }
    const scopes = new Set<string>([`repository:${this.ref.repository}:${this.options.actions}`]);
    for (const other of this.options.alsoPull ?? []) scopes.add(`repository:${other}:pull`);
    if (challenge.params.scope) for (const s of challenge.params.scope.split(' ')) scopes.add(s);
    this.authorization = `Bearer ${await fetchBearerToken(challenge, [...scopes], credentials, this.ref.registry)}`;
  }
}

export class StatusError extends Error {
  constructor(readonly status: number, message: string) {
    super(message);
  }
}

function retryable(error: unknown): boolean {
  if (error instanceof ConnectionError) return true;
  return error instanceof StatusError && RETRY_STATUSES.has(error.status);
}

/** Runs `fn` up to `attempts` times, backing off 0.25 s, 0.5 s, 1 s… on 5xx, 429 and connection errors. */
export async function withRetries<T>(attempts: number, what: string, registry: string, onRetry: (message: string) => void, fn: () => Promise<T>): Promise<T> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await fn();
    } catch (error) {
      if (!retryable(error)) throw error;
      if (attempt >= attempts) {
        const message = (error as Error).message;
        throw new Error(`${what} on ${registry} failed after ${attempt} attempt${attempt > 1 ? 's' : ''}: ${message.startsWith(what) ? message.slice(what.length + 2) : message}`);
      }
      const delay = 250 * 2 ** (attempt - 1) * (0.75 + Math.random() / 2);
      onRetry(`${what}: ${(error as Error).message}; retrying in ${(delay / 1000).toFixed(1)} s (attempt ${attempt + 1} of ${attempts})`);
      await sleep(delay);
    }
  }
}
