import { chmod, mkdir, mkdtemp, rm } from 'node:fs/promises';
import { accessLogTo } from './access-log.ts';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Logger } from '@pyml/contract';
import { ConsoleRoutes } from './console/routes.ts';
import { ExternalModel } from './external-model.ts';
import { GrpcFront } from './grpc-front.ts';
import { HttpFront } from './http-front.ts';
import { ServiceMetrics } from './metrics.ts';
import type { ModelEndpoint } from './model-endpoint.ts';
import { ModelRouter, type VersionedEndpoint } from './model-router.ts';
import { ModelRepository } from './repository.ts';
import type { TrafficSplit } from './split.ts';
import type { VersionPolicies } from './version-policy.ts';
import type { ModelRunner } from './model-runner.ts';
import { SupervisedModel, type SupervisionOptions } from './supervised-model.ts';
import { holdOpen, type ImageInfo, readImageInfo, unpackImage } from '@pyml/launcher';
import { AdaptiveBatcher, keepYoungGenerationSmall } from '@pyml/runtime/protocol';

export interface ServeOptions {
  /** Image refs (OCI layout dirs or tarballs), each served under the model name in its pyml.json. */
  images: string[];
  /** Models served by processes started elsewhere: name → Unix socket path. */
  external: { name: string; socket: string; version?: string }[];
  /** gRPC listen address (HOST:PORT, port 0 picks one; or unix:PATH), or none. */
  grpc?: string;
  /** HTTP listen address (HOST:PORT), or none. */
  http?: string;
  /** Where model sockets go (made private, 0700); default a fresh temp dir removed at stop. */
  socketDir?: string;
  runner: ModelRunner;
  /** Batching for every model (else the image's own `serving` settings). */
  maxBatchSize?: number;
  maxBatchDelayMs?: number;
  maxConcurrency: number;
  maxMessageBytes: number;
  deadlineMs: number;
  startTimeoutMs: number;
  logger: Logger;
  /** One log line per request answered (protocol, request, status, latency). */
  accessLog?: boolean;
  /** The console at / and the OpenAPI documents, on the HTTP port (default on; `--no-console` turns them off). */
  console?: boolean;
  onUnpackProgress?: (ref: string, bytes: number) => void;
  /** Restart backoff (first delay; doubles up to 30 s). */
  backoffMs?: number;
  /** `on-demand`: a model's process starts at the first call that needs it; `eager`: all start at once. */
  start: 'on-demand' | 'eager';
  /** On demand: stop a model unused this long (it starts again at its next call); 0 or absent keeps it running. */
  idleTimeoutMs?: number;
  /** Which version answers requests naming none (default: the highest). */
  versionPolicies?: VersionPolicies;
  /** Traffic splits of unversioned requests between versions, per model. */
  splits?: TrafficSplit[];
  /** A model repository: a directory of image layouts and tarballs, loaded at start and by the repository API. */
  repository?: string;
  /** With `repository`: look for added, changed and removed images this often (0 or absent: only on request). */
  pollMs?: number;
  /** With `repository`: pulls a registry reference (a *.ref entry) into the local cache; its local path. */
  pullRef?: (ref: string) => Promise<string>;
}

export interface ServiceAddresses {
  grpc?: string;
  http?: string;
  socketDir: string;
}

/**
 * A model's launch, and where its batching happens. When it batches at all (the flags, else the image's `serving`
 * settings) and its signature allows it, the service merges calls before the second hop (front-batcher.ts) and the
 * model's process runs each merged call as it comes (PYML_MAX_BATCH_SIZE=1); otherwise the flags go to the process.
 */
function modelSettings(image: ImageInfo, opts: ServeOptions, socketBase: string, onBatch: (rows: number) => void): Pick<SupervisionOptions, 'batching' | 'launch'> {
  const { manifest } = image;
  const env: Record<string, string> = { PYML_MAX_MESSAGE_BYTES: String(opts.maxMessageBytes) };
  const options = AdaptiveBatcher.options(manifest.serving, { maxBatchSize: opts.maxBatchSize, maxBatchDelayMs: opts.maxBatchDelayMs });
  let batching: SupervisionOptions['batching'];
  if (options.maxBatchSize > 1 && AdaptiveBatcher.supports(manifest.kind, manifest.signature)) {
    batching = { model: { name: manifest.name, version: manifest.version, signature: manifest.signature }, options, mergedDeadlineMs: opts.deadlineMs, onBatch };
    env.PYML_MAX_BATCH_SIZE = '1';
  } else {
    if (opts.maxBatchSize !== undefined) env.PYML_MAX_BATCH_SIZE = String(opts.maxBatchSize);
    if (opts.maxBatchDelayMs !== undefined) env.PYML_MAX_BATCH_DELAY_MS = String(opts.maxBatchDelayMs);
  }
  return { batching, launch: { name: manifest.name, image, socket: `${socketBase}.sock`, frames: `${socketBase}.frames.sock`, env, startTimeoutMs: opts.startTimeoutMs } };
}

/** What `pyml cache prune` must see in use while a model can start from the image: its layout or tarball, and its unpacked tree. */
function heldPaths(image: ImageInfo): string[] {
  return 'rootfs' in image ? [image.rootfs as string, image.ref] : [image.ref];
}

/** The embedded runner needs the filesystem: unpack up front (once per digest) so the first start is quick. */
function prepareImage(ref: string, opts: ServeOptions): Promise<ImageInfo> {
  return opts.runner.kind === 'embedded' ? unpackImage(ref, { onProgress: (n) => opts.onUnpackProgress?.(ref, n) }) : readImageInfo(ref);
}

/**
 * Splits and pinned versions must name what is served, unless a repository may load it later (then a missing
 * version takes no traffic, or fails the requests it would have had with a message naming it).
 */
function checkRouting(router: ModelRouter, opts: ServeOptions): void {
  if (opts.repository) return;
  for (const split of opts.splits ?? []) {
    const model = router.versions(split.model);
    if (!model) throw new Error(`--split names model '${split.model}', which is not served (models: ${[...new Set(router.entries.map((e) => e.name))].join(', ')})`);
    const missing = split.shares.find((s) => !model.get(s.version));
    if (missing) throw new Error(`--split ${split.model}: version '${missing.version}' is not served (versions: ${model.versions.join(', ')})`);
  }
  for (const name of new Set(router.entries.map((e) => e.name))) {
    const model = router.versions(name)!;
    if (model.policy.kind === 'pinned' && !model.get(model.policy.version)) {
      throw new Error(`--version-policy pins model '${name}' to version '${model.policy.version}', which is not served (versions: ${model.versions.join(', ')}); pin one model with NAME:pinned=VERSION`);
    }
  }
}

function splitHostPort(address: string, flag: string): { host: string; port: number } {
  const m = /^(.*):(\d+)$/.exec(address);
  if (!m || Number(m[2]) > 65535) throw new Error(`${flag} must be HOST:PORT, got '${address}'`);
  return { host: m[1].replace(/^\[(.*)\]$/, '$1') || '0.0.0.0', port: Number(m[2]) };
}

/**
 * `pyml serve`: starts and supervises one process per image (or watches external endpoints), routes V2 gRPC and
 * REST requests to them by model name, and exposes metrics. A model that fails never takes the service down.
 */
export class PredictionService {
  private grpcFront?: GrpcFront;
  private httpFront?: HttpFront;
  private ownSocketDir = false;
  private heldImages: { release(): Promise<void> }[] = [];
  /** Hot swaps so far: each new process gets its own socket names, since its predecessor still listens. */
  private swaps = 0;
  /** The socket files of the models this service started (removed at stop when the directory is not its own). */
  private readonly socketFiles = new Map<ModelEndpoint, string[]>();
  repository?: ModelRepository;

  private constructor(readonly router: ModelRouter, readonly metrics: ServiceMetrics, readonly addresses: ServiceAddresses, private readonly opts: ServeOptions) {}

  static async start(opts: ServeOptions): Promise<PredictionService> {
    // This process is a server from now on: a small young generation (as in the model processes it starts).
    keepYoungGenerationSmall();
    const grpcUnix = opts.grpc?.startsWith('unix:') ? opts.grpc : undefined;
    const grpcAddr = opts.grpc && !grpcUnix ? splitHostPort(opts.grpc, '--grpc') : undefined;
    const httpAddr = opts.http ? splitHostPort(opts.http, '--http') : undefined;
    const images: ImageInfo[] = [];
    for (const ref of opts.images) images.push(await prepareImage(ref, opts));
    // Versions of one model are served side by side; one name and version twice is a mistake, as is an external
    // model (whose version this service does not know) sharing its name with another.
    const keys = images.map((i) => `${i.manifest.name}@${i.manifest.version}`);
    const twice = keys.findIndex((k, i) => keys.indexOf(k) !== i);
    if (twice >= 0) throw new Error(`${opts.images[keys.indexOf(keys[twice])]} and ${opts.images[twice]} are both version '${images[twice].manifest.version}' of model '${images[twice].manifest.name}'; each version can be served once`);
    // An external model with a version (NAME@VERSION=...) may be one of several versions of its name.
    const served = [...keys, ...opts.external.map((e) => `${e.name}@${e.version ?? ''}`)];
    const dup = opts.external.find((e, i) => served.indexOf(`${e.name}@${e.version ?? ''}`) !== keys.length + i || (!e.version && served.some((k) => k.startsWith(`${e.name}@`) && k !== `${e.name}@`)));
    if (dup) throw new Error(dup.version ? `version '${dup.version}' of model '${dup.name}' is given twice` : `two models are called '${dup.name}'; a model served by --model without @VERSION cannot share its name with another`);

    const socketDir = opts.socketDir ?? (await mkdtemp(join(tmpdir(), 'pyml-serve-')));
    await mkdir(socketDir, { recursive: true, mode: 0o700 });
    await chmod(socketDir, 0o700);
    const endpointOpts = { maxMessageBytes: opts.maxMessageBytes, maxConcurrency: opts.maxConcurrency };

    let router: ModelRouter | undefined;
    const metrics = new ServiceMetrics(() => (router?.entries ?? []).map(({ version, endpoint }) => ({ name: endpoint.name, version, servable: endpoint.servable, state: endpoint.state, activeCalls: endpoint.activeCalls })));
    router = new ModelRouter([], metrics, opts.deadlineMs, { policies: opts.versionPolicies, splits: opts.splits });
    const service = new PredictionService(router, metrics, { socketDir }, opts);
    const endpoints: VersionedEndpoint[] = [
      // A model name served once keeps its socket's plain name; versions side by side get one each.
      ...images.map((image) => service.supervised(image, images.filter((i) => i.manifest.name === image.manifest.name).length === 1 && !opts.repository)),
      ...opts.external.map((e) => ({ version: e.version ?? '', endpoint: new ExternalModel(e.name, e.socket, endpointOpts, opts.logger) })),
    ];
    for (const e of endpoints) router.add(e.endpoint, e.version);
    const access = opts.accessLog ? accessLogTo(opts.logger) : undefined;
    service.ownSocketDir = opts.socketDir === undefined;
    // Models start again at any time (on demand, after a crash): `pyml cache prune` must see their files in use.
    service.heldImages.push(await holdOpen(images.flatMap(heldPaths)));
    try {
      checkRouting(router, opts);
      // Listen first (live at once); models come up in parallel, and the service is ready when they are.
      if (grpcUnix) {
        service.grpcFront = new GrpcFront(router, opts.maxMessageBytes, access);
        await service.grpcFront.listen(grpcUnix);
        service.addresses.grpc = grpcUnix;
      } else if (grpcAddr) {
        service.grpcFront = new GrpcFront(router, opts.maxMessageBytes, access);
        const port = await service.grpcFront.listen(`${grpcAddr.host.includes(':') ? `[${grpcAddr.host}]` : grpcAddr.host}:${grpcAddr.port}`);
        service.addresses.grpc = `${grpcAddr.host}:${port}`;
      }
      if (httpAddr) {
        service.httpFront = new HttpFront(router, metrics, opts.maxMessageBytes, access);
        if (opts.console !== false) service.httpFront.pages = new ConsoleRoutes(router, metrics);
        const port = await service.httpFront.listen(httpAddr.host, httpAddr.port);
        service.addresses.http = `${httpAddr.host}:${port}`;
      }
      await Promise.all(endpoints.map((e) => e.endpoint.start()));
      if (opts.repository) {
        service.repository = new ModelRepository(opts.repository, {
          router, logger: opts.logger, deadlineMs: opts.deadlineMs, pull: opts.pullRef,
          prepare: async (ref) => {
            const image = await prepareImage(ref, opts);
            service.heldImages.push(await holdOpen(heldPaths(image)));
            return image;
          },
          serve: (image) => service.supervised(image, false, 'eager').endpoint,
          retired: (endpoint) => service.forget(endpoint),
        });
        if (service.httpFront) service.httpFront.repository = service.repository;
        if (service.grpcFront) service.grpcFront.repository = service.repository;
        await service.repository.start(opts.pollMs ?? 0);
      }
    } catch (error) {
      await service.stop(1000);
      throw error;
    }
    return service;
  }

  /**
   * Serves a new image of a model this service runs (`pyml serve --watch` after a rebuild): its process starts
   * beside the running one, which drains once the new one is ready (see SupervisedModel.swap). The name, kind,
   * signature and batching settings must stay (the routes and the front's merging are made from them): otherwise
   * this throws and the running model stays. A new process that fails to start throws its error, likewise.
   */
  async replaceImage(ref: string, graceMs = 10_000): Promise<{ model: string; pid?: number }> {
    const image = this.opts.runner.kind === 'embedded' ? await unpackImage(ref) : await readImageInfo(ref);
    const { name } = image.manifest;
    // The same version of the model, else its only version.
    const versions = this.router.versions(name);
    const model = versions?.get(image.manifest.version) ?? (versions?.size === 1 ? versions.endpoints[0] : undefined);
    if (!(model instanceof SupervisedModel)) throw new Error(`the new image is model '${name}', which this service does not run (models: ${this.router.endpoints.map((e) => e.name).join(', ')}); restart pyml serve to serve it`);
    const before = model.image.manifest;
    const shape = (m: typeof before) => JSON.stringify([m.kind, m.signature, m.serving ?? null]);
    if (shape(before) !== shape(image.manifest)) throw new Error(`model '${name}' changed its kind, signature or serving settings, which a running service cannot swap; restart pyml serve to serve it`);
    this.heldImages.push(await holdOpen(heldPaths(image)));
    const { launch } = modelSettings(image, this.opts, join(this.addresses.socketDir, name), () => {});
    const swap = ++this.swaps;
    const swapped = { ...launch, socket: launch.socket.replace(/\.sock$/, `.${swap}.sock`), frames: launch.frames?.replace(/\.frames\.sock$/, `.${swap}.frames.sock`) };
    this.socketFiles.get(model)?.push(swapped.socket, ...(swapped.frames ? [swapped.frames] : []));
    await model.swap(swapped, graceMs);
    return { model: name, pid: model.pid };
  }

  /**
   * A supervised process for one image, as a version of its model. `plainSocket`: the socket is named after the
   * model alone (one version, as before versions); otherwise after its version and a sequence number, so a version
   * loaded again from a new image never shares a socket with the process it replaces.
   */
  private supervised(image: ImageInfo, plainSocket: boolean, start = this.opts.start): VersionedEndpoint {
    const { name, version } = image.manifest;
    const opts = this.opts;
    const base = join(this.addresses.socketDir, plainSocket ? name : `${name}@${version.replace(/[^A-Za-z0-9._-]/g, '_')}.${++this.swaps}`);
    const settings = modelSettings(image, opts, base, (rows) => this.metrics.batchRows.observe({ model: name, version }, rows));
    const endpoint = new SupervisedModel(name, {
      maxMessageBytes: opts.maxMessageBytes, maxConcurrency: opts.maxConcurrency, ...settings, runner: opts.runner, logger: opts.logger, backoffMs: opts.backoffMs,
      onRestart: () => this.metrics.restarts.inc({ model: name, version }),
      onDemand: start === 'on-demand', idleTimeoutMs: opts.idleTimeoutMs,
    });
    this.socketFiles.set(endpoint, [settings.launch.socket, ...(settings.launch.frames ? [settings.launch.frames] : [])]);
    return { version, endpoint };
  }

  /** A retired model (stopped by the repository) is no longer this service's to stop: its socket files go. */
  private async forget(endpoint: ModelEndpoint): Promise<void> {
    for (const file of this.socketFiles.get(endpoint) ?? []) await rm(file, { force: true });
    this.socketFiles.delete(endpoint);
  }

  /** Stops taking calls, lets in-flight ones finish (up to `graceMs`), then stops the models. */
  async stop(graceMs = 10_000): Promise<void> {
    await Promise.all([this.grpcFront?.close(graceMs), this.httpFront?.close()]);
    await this.repository?.stop(graceMs);
    await Promise.all(this.router.endpoints.map((e) => e.stop(graceMs)));
    await this.opts.runner.close?.();
    await Promise.all(this.heldImages.map((held) => held.release()));
    if (this.ownSocketDir) await rm(this.addresses.socketDir, { recursive: true, force: true });
    else for (const files of this.socketFiles.values()) for (const file of files) await rm(file, { force: true });
  }
}
