import { readFile, readdir, stat } from 'node:fs/promises';
import { basename, join } from 'node:path';
import type { Logger } from '@pyml/contract';
import type { ImageInfo } from '@pyml/launcher';
import { status } from '@pyml/runtime/protocol';
import type { ModelEndpoint } from './model-endpoint.ts';
import type { ModelRouter } from './model-router.ts';
import { RpcFailure } from './rpc-failure.ts';

export interface RepositoryHooks {
  router: ModelRouter;
  logger: Logger;
  /** The longest a request may take: a retired version is stopped once its calls ended, or after this. */
  deadlineMs: number;
  /** Reads (and for the embedded runner unpacks) the image at a path. */
  prepare(ref: string): Promise<ImageInfo>;
  /** Pulls a registry reference into the local cache (only the blobs it lacks) and gives the pulled image's path. */
  pull?(ref: string): Promise<string>;
  /** A model endpoint for the image, not started yet. */
  serve(image: ImageInfo): ModelEndpoint;
  /** Told when a retired version's process has stopped. */
  retired(endpoint: ModelEndpoint): Promise<void>;
}

/** One image found in the repository directory. */
interface Found {
  path: string;
  name: string;
  version: string;
  digest: string;
  image: ImageInfo;
}

interface Loaded {
  version: string;
  digest: string;
  path: string;
  endpoint: ModelEndpoint;
}

/** A row of RepositoryIndex, as KServe's and Triton's model repository extension define it. */
export interface IndexEntry {
  name: string;
  version: string;
  state: 'READY' | 'LOADING' | 'UNLOADING' | 'UNAVAILABLE';
  reason: string;
}

/** How long a request between picking a version and reaching it may take; a retiring version waits this long first. */
const PICKED_NOT_ARRIVED_MS = 250;

/**
 * The model repository: a directory whose entries are image layouts (directories with index.json), image
 * tarballs (*.tar) and registry references (*.ref: a text file holding HOST/REPO:TAG or HOST/REPO@DIGEST, asked
 * for again at every scan, so a tag that moves brings its new image), each one version of a model, loaded at start and again on request (`load`/`unload` of the V2
 * repository extension) or every poll. Reconciling a model starts each new or changed version beside what serves
 * (a version only takes traffic once its process is ready), then takes removed or replaced versions out of routing
 * and stops each once its calls in flight have ended: no request fails because of a swap. One change runs at a
 * time. Entries whose names start with '.' are ignored, so an image copied in under a dot name and renamed when
 * complete is never read half-written.
 */
export class ModelRepository {
  /** The versions this repository loaded, per model name. */
  private readonly loaded = new Map<string, Map<string, Loaded>>();
  /** Models unloaded by request: polling leaves them out until they are loaded by request again. */
  private readonly unloaded = new Set<string>();
  /** Why a version (name@version) or an entry (its path) could not be loaded, until it loads. */
  private readonly failures = new Map<string, string>();
  /** Versions being started now, and retired versions still draining. */
  private readonly loading = new Set<string>();
  private readonly draining = new Map<ModelEndpoint, { name: string; version: string; done: Promise<void> }>();
  /** Entries read before, by path, with the file stamp they were read at: an unchanged entry is not read again. */
  private readonly seen = new Map<string, { stamp: string; found: Found }>();
  private lastScan: Found[] = [];
  private queue: Promise<unknown> = Promise.resolve();
  private timer?: NodeJS.Timeout;
  private stopped = false;

  constructor(readonly dir: string, private readonly hooks: RepositoryHooks) {}

  /** Loads everything in the directory, then polls every `pollMs` (0: never). */
  async start(pollMs: number): Promise<void> {
    await this.serialised(() => this.sync());
    if (pollMs > 0) {
      this.timer = setInterval(() => {
        void this.serialised(() => this.sync()).catch((error: unknown) => this.hooks.logger.error('repository poll failed', { dir: this.dir, error: (error as Error).message }));
      }, pollMs);
      this.timer.unref();
    }
  }

  /** Stops polling and waits for retired versions to stop (the service stops the rest). */
  async stop(graceMs: number): Promise<void> {
    this.stopped = true;
    clearInterval(this.timer);
    await this.queue.catch(() => {});
    await Promise.race([Promise.all([...this.draining.values()].map((d) => d.done)), new Promise((r) => setTimeout(r, graceMs).unref())]);
  }

  /** RepositoryIndex: every version found or served, with its state (`readyOnly`: only those taking calls). */
  index(readyOnly = false): IndexEntry[] {
    const rows: IndexEntry[] = [];
    const listed = new Set<string>();
    const add = (row: IndexEntry) => {
      const key = `${row.name}@${row.version}`;
      if (listed.has(key)) return;
      listed.add(key);
      rows.push(row);
    };
    for (const { name, version, endpoint } of this.hooks.router.entries) {
      add({ name, version, state: endpoint.servable ? 'READY' : 'UNAVAILABLE', reason: endpoint.servable ? '' : endpoint.error ?? endpoint.state });
    }
    for (const [endpoint, { name, version }] of this.draining) add({ name, version, state: 'UNLOADING', reason: `retired; ${endpoint.activeCalls} calls in flight` });
    for (const f of this.lastScan) {
      const key = `${f.name}@${f.version}`;
      if (this.loading.has(key)) add({ name: f.name, version: f.version, state: 'LOADING', reason: '' });
      else add({ name: f.name, version: f.version, state: 'UNAVAILABLE', reason: this.unloaded.has(f.name) ? 'unloaded' : this.failures.get(key) ?? 'not loaded' });
    }
    // An entry that is not a readable image: listed under its file name, since its model's name is not known.
    for (const [path, reason] of this.failures) if (path.startsWith('/')) add({ name: basename(path), version: '', state: 'UNAVAILABLE', reason: `${path}: ${reason}` });
    rows.sort((a, b) => a.name.localeCompare(b.name) || a.version.localeCompare(b.version));
    return readyOnly ? rows.filter((r) => r.state === 'READY') : rows;
  }

  /** RepositoryModelLoad: (re)loads every version of `name` the directory holds; fails if none can serve. */
  load(name: string): Promise<void> {
    return this.serialised(async () => {
      const found = (await this.scan()).filter((f) => f.name === name);
      if (found.length === 0) throw new RpcFailure(status.NOT_FOUND, `no image of model '${name}' in the repository ${this.dir} (models there: ${[...new Set(this.lastScan.map((f) => f.name))].join(', ') || 'none'})`);
      this.unloaded.delete(name);
      await this.reconcile(name, found);
      const versions = this.loaded.get(name);
      if (!versions || versions.size === 0) {
        const reasons = found.map((f) => `${f.version}: ${this.failures.get(`${f.name}@${f.version}`) ?? 'not loaded'}`);
        throw new RpcFailure(status.INTERNAL, `model '${name}' failed to load (${reasons.join('; ')})`);
      }
    });
  }

  /** RepositoryModelUnload: takes every version of `name` this repository loaded out of routing; each stops once its calls end. */
  unload(name: string): Promise<void> {
    return this.serialised(async () => {
      const versions = this.loaded.get(name);
      if (!versions && !this.lastScan.some((f) => f.name === name)) throw new RpcFailure(status.NOT_FOUND, `model '${name}' is not in the repository ${this.dir}`);
      this.unloaded.add(name);
      await this.reconcile(name, []);
    });
  }

  /** One change at a time: requests and polls queue behind each other. */
  private serialised<T>(work: () => Promise<T>): Promise<T> {
    const next = this.queue.then(() => (this.stopped ? Promise.reject(new RpcFailure(status.UNAVAILABLE, 'the service is shutting down')) : work()));
    this.queue = next.catch(() => {});
    return next;
  }

  /** Every model in the directory (except those unloaded by request) to what the directory holds now. */
  private async sync(): Promise<void> {
    const found = await this.scan();
    const names = new Set([...found.map((f) => f.name), ...this.loaded.keys()]);
    for (const name of names) if (!this.unloaded.has(name)) await this.reconcile(name, found.filter((f) => f.name === name));
  }

  /** The directory's images, each read once per change of its files (mtime and size of the tarball or of index.json). */
  private async scan(): Promise<Found[]> {
    const entries = await readdir(this.dir, { withFileTypes: true }).catch((error: NodeJS.ErrnoException) => {
      throw new RpcFailure(status.UNAVAILABLE, `cannot read the model repository ${this.dir}: ${error.message}`);
    });
    const found: Found[] = [];
    const present = new Set<string>();
    for (const entry of entries) {
      if (entry.name.startsWith('.')) continue;
      const path = join(this.dir, entry.name);
      const isRef = !entry.isDirectory() && entry.name.endsWith('.ref');
      const marker = entry.isDirectory() ? join(path, 'index.json') : /\.tar$/.test(entry.name) || isRef ? path : undefined;
      if (!marker) continue;
      present.add(path);
      const info = await stat(marker).catch(() => undefined);
      if (!info) {
        this.failures.set(path, 'not an image layout (no index.json)');
        continue;
      }
      const before = this.seen.get(path);
      try {
        // A reference is pulled again (its tag may have moved): the pulled image's path, named by digest, is its stamp.
        const local = isRef ? await this.pullEntry(path) : path;
        const stamp = isRef ? local : `${info.mtimeMs}:${info.size}`;
        if (before?.stamp === stamp) {
          found.push(before.found);
          continue;
        }
        const image = await this.hooks.prepare(local);
        const f: Found = { path, name: image.manifest.name, version: image.manifest.version, digest: image.manifestDigest, image };
        this.seen.set(path, { stamp, found: f });
        this.failures.delete(path);
        found.push(f);
      } catch (error) {
        // A broken entry changes nothing: what it served before (if anything) keeps serving.
        this.failures.set(path, (error as Error).message);
        this.hooks.logger.warn('repository entry not readable', { path, error: (error as Error).message });
        if (before) found.push(before.found);
      }
    }
    for (const path of [...this.seen.keys()]) if (!present.has(path)) this.seen.delete(path);
    for (const key of [...this.failures.keys()]) if (key.startsWith('/') && !present.has(key)) this.failures.delete(key);
    this.lastScan = found;
    return found;
  }

  /** The local path of the image a *.ref entry names. */
  private async pullEntry(path: string): Promise<string> {
    const ref = (await readFile(path, 'utf8')).split('\n').map((line) => line.trim()).find((line) => line !== '' && !line.startsWith('#'));
    if (!ref) throw new Error('holds no image reference (one HOST/REPO:TAG or HOST/REPO@sha256:… line)');
    if (!this.hooks.pull) throw new Error(`registry references cannot be pulled here (${ref})`);
    return this.hooks.pull(ref);
  }

  /**
   * Brings one model's loaded versions to `found`: new and changed versions started and, once ready, routed (a
   * changed one replacing its predecessor in the same step); versions no longer found taken out. With the
   * `latest` policy the highest version becomes the default as soon as it routes.
   */
  private async reconcile(name: string, found: Found[]): Promise<void> {
    const wanted = new Map<string, Found>();
    for (const f of [...found].sort((a, b) => a.path.localeCompare(b.path))) {
      const other = wanted.get(f.version);
      if (other && other.digest !== f.digest) this.hooks.logger.warn('two repository entries are one version', { model: name, version: f.version, used: f.path, ignored: other.path });
      wanted.set(f.version, f);
    }
    let versions = this.loaded.get(name);
    for (const [version, f] of wanted) {
      const current = versions?.get(version);
      if (current?.digest === f.digest) continue;
      const endpoint = await this.startVersion(f);
      if (!endpoint) continue;
      // Take out and put in within one turn: no request finds the version missing.
      if (current) this.hooks.router.remove(name, version);
      try {
        this.hooks.router.add(endpoint, version);
      } catch (error) {
        this.failures.set(`${name}@${version}`, (error as Error).message);
        if (current) this.hooks.router.add(current.endpoint, version);
        void this.retire(name, version, endpoint);
        continue;
      }
      if (!versions) this.loaded.set(name, (versions = new Map()));
      versions.set(version, { version, digest: f.digest, path: f.path, endpoint });
      this.hooks.logger.info(current ? 'model version replaced' : 'model version loaded', { model: name, version, path: f.path, digest: f.digest });
      if (current) void this.retire(name, version, current.endpoint);
    }
    for (const [version, current] of [...(versions ?? [])]) {
      if (wanted.has(version)) continue;
      this.hooks.router.remove(name, version);
      versions!.delete(version);
      this.hooks.logger.info('model version retired', { model: name, version, path: current.path });
      void this.retire(name, version, current.endpoint);
    }
    if (versions?.size === 0) this.loaded.delete(name);
  }

  /** Starts a version's process; undefined (and the reason kept for the index) when it does not become ready. */
  private async startVersion(f: Found): Promise<ModelEndpoint | undefined> {
    const key = `${f.name}@${f.version}`;
    this.loading.add(key);
    const endpoint = this.hooks.serve(f.image);
    try {
      await endpoint.start();
      if (endpoint.ready) {
        this.failures.delete(key);
        return endpoint;
      }
      const reason = endpoint.error ?? `its process is ${endpoint.state}`;
      this.failures.set(key, reason);
      this.hooks.logger.error('model version failed to load', { model: f.name, version: f.version, path: f.path, error: reason });
      void this.retire(f.name, f.version, endpoint);
      return undefined;
    } finally {
      this.loading.delete(key);
    }
  }

  /**
   * Stops a version taken out of routing once its calls have ended (or the request deadline has passed): calls
   * picked just before it left routing are given a moment to arrive first.
   */
  private retire(name: string, version: string, endpoint: ModelEndpoint): Promise<void> {
    const done = (async () => {
      const until = Date.now() + this.hooks.deadlineMs;
      await new Promise((r) => setTimeout(r, PICKED_NOT_ARRIVED_MS));
      while (endpoint.activeCalls > 0 && Date.now() < until) await new Promise((r) => setTimeout(r, 20));
      await endpoint.stop(10_000);
      await this.hooks.retired(endpoint);
      this.hooks.logger.info('model version stopped', { model: name, version });
    })().catch((error: unknown) => this.hooks.logger.error('stopping a retired model version failed', { model: name, version, error: (error as Error).message }))
      .finally(() => this.draining.delete(endpoint));
    this.draining.set(endpoint, { name, version, done });
    return done;
  }
}
