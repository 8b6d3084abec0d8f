import { chmod, mkdir, mkdtemp, rm } from 'node:fs/promises';
import { accessLogTo } from './access-log.ts';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Logger } from '@pyml/contract';
import { ExternalModel } from './external-model.ts';
import { GrpcFront } from './grpc-front.ts';
import { HttpFront } from './http-front.ts';
import { ServiceMetrics } from './metrics.ts';
import type { ModelEndpoint } from './model-endpoint.ts';
import { ModelRouter } from './model-router.ts';
import type { ModelRunner } from './model-runner.ts';
import { SupervisedModel, type SupervisionOptions } from './supervised-model.ts';
import { holdOpen, type ImageInfo, readImageInfo, unpackImage } from '@pyml/launcher';
import { AdaptiveBatcher } from '@pyml/runtime/protocol';

export interface ServeOptions {
  /** Image refs (OCI layout dirs or tarballs), each served under the model name in its pyml.json. */
  images: string[];
  /** Models served by processes started elsewhere: name → Unix socket path. */
  external: { name: string; socket: string }[];
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
  onUnpackProgress?: (ref: string, bytes: number) => void;
  /** Restart backoff (first delay; doubles up to 30 s). */
  backoffMs?: number;
  /** `on-demand`: a model's process starts at the first call that needs it; `eager`: all start at once. */
  start: 'on-demand' | 'eager';
  /** On demand: stop a model unused this long (it starts again at its next call); 0 or absent keeps it running. */
  idleTimeoutMs?: number;
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
function modelSettings(image: ImageInfo, opts: ServeOptions, socketDir: string, onBatch: (rows: number) => void): Pick<SupervisionOptions, 'batching' | 'launch'> {
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
  return { batching, launch: { name: manifest.name, image, socket: join(socketDir, `${manifest.name}.sock`), frames: join(socketDir, `${manifest.name}.frames.sock`), env, startTimeoutMs: opts.startTimeoutMs } };
}

/** What `pyml cache prune` must see in use while a model can start from the image: its layout or tarball, and its unpacked tree. */
function heldPaths(image: ImageInfo): string[] {
  return 'rootfs' in image ? [image.rootfs as string, image.ref] : [image.ref];
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

  private constructor(readonly router: ModelRouter, readonly metrics: ServiceMetrics, readonly addresses: ServiceAddresses, private readonly opts: ServeOptions) {}

  static async start(opts: ServeOptions): Promise<PredictionService> {
    const grpcUnix = opts.grpc?.startsWith('unix:') ? opts.grpc : undefined;
    const grpcAddr = opts.grpc && !grpcUnix ? splitHostPort(opts.grpc, '--grpc') : undefined;
    const httpAddr = opts.http ? splitHostPort(opts.http, '--http') : undefined;
    // The embedded runner needs the filesystem: unpack up front (once per digest) so the first start is quick.
    const images: ImageInfo[] = [];
    for (const ref of opts.images) {
      images.push(opts.runner.kind === 'embedded' ? await unpackImage(ref, { onProgress: (n) => opts.onUnpackProgress?.(ref, n) }) : await readImageInfo(ref));
    }
    const names = [...images.map((i) => i.manifest.name), ...opts.external.map((e) => e.name)];
    const dup = names.find((n, i) => names.indexOf(n) !== i);
    if (dup) throw new Error(`two models are called '${dup}'; each model name can be served once`);

    const socketDir = opts.socketDir ?? (await mkdtemp(join(tmpdir(), 'pyml-serve-')));
    await mkdir(socketDir, { recursive: true, mode: 0o700 });
    await chmod(socketDir, 0o700);
    const endpointOpts = { maxMessageBytes: opts.maxMessageBytes, maxConcurrency: opts.maxConcurrency };

    let metrics: ServiceMetrics | undefined;
    const endpoints: ModelEndpoint[] = [
      ...images.map((image) => new SupervisedModel(image.manifest.name, {
        ...endpointOpts, ...modelSettings(image, opts, socketDir, (rows) => metrics?.batchRows.observe({ model: image.manifest.name }, rows)), runner: opts.runner, logger: opts.logger, backoffMs: opts.backoffMs,
        onRestart: () => metrics?.restarts.inc({ model: image.manifest.name }),
        onDemand: opts.start === 'on-demand', idleTimeoutMs: opts.idleTimeoutMs,
      })),
      ...opts.external.map((e) => new ExternalModel(e.name, e.socket, endpointOpts, opts.logger)),
    ];
    metrics = new ServiceMetrics(() => endpoints);
    const router = new ModelRouter(endpoints, metrics, opts.deadlineMs);
    const service = new PredictionService(router, metrics, { socketDir }, opts);
    const access = opts.accessLog ? accessLogTo(opts.logger) : undefined;
    service.ownSocketDir = opts.socketDir === undefined;
    // Models start again at any time (on demand, after a crash): `pyml cache prune` must see their files in use.
    service.heldImages.push(await holdOpen(images.flatMap(heldPaths)));
    try {
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
        const port = await service.httpFront.listen(httpAddr.host, httpAddr.port);
        service.addresses.http = `${httpAddr.host}:${port}`;
      }
      await Promise.all(endpoints.map((e) => e.start()));
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
    const model = this.router.endpoints.find((e) => e.name === name);
    if (!(model instanceof SupervisedModel)) throw new Error(`the new image is model '${name}', which this service does not run (models: ${this.router.endpoints.map((e) => e.name).join(', ')}); restart pyml serve to serve it`);
    const before = model.image.manifest;
    const shape = (m: typeof before) => JSON.stringify([m.kind, m.signature, m.serving ?? null]);
    if (shape(before) !== shape(image.manifest)) throw new Error(`model '${name}' changed its kind, signature or serving settings, which a running service cannot swap; restart pyml serve to serve it`);
    this.heldImages.push(await holdOpen(heldPaths(image)));
    const { launch } = modelSettings(image, this.opts, this.addresses.socketDir, () => {});
    const swap = ++this.swaps;
    await model.swap({ ...launch, socket: launch.socket.replace(/\.sock$/, `.${swap}.sock`), frames: launch.frames?.replace(/\.frames\.sock$/, `.${swap}.frames.sock`) }, graceMs);
    return { model: name, pid: model.pid };
  }

  /** Stops taking calls, lets in-flight ones finish (up to `graceMs`), then stops the models. */
  async stop(graceMs = 10_000): Promise<void> {
    await Promise.all([this.grpcFront?.close(graceMs), this.httpFront?.close()]);
    await Promise.all(this.router.endpoints.map((e) => e.stop(graceMs)));
    await this.opts.runner.close?.();
    await Promise.all(this.heldImages.map((held) => held.release()));
    if (this.ownSocketDir) await rm(this.addresses.socketDir, { recursive: true, force: true });
    else for (const e of this.router.endpoints) if (e instanceof SupervisedModel) for (const file of [`${e.name}.sock`, `${e.name}.frames.sock`]) await rm(join(this.addresses.socketDir, file), { force: true });
  }
}
