import { type IncomingMessage, type Server, type ServerResponse, createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Logger } from '@pyml/contract';
import type { Predictor } from './batcher.ts';
import { describeError } from './errors.ts';
import type { ModelHost } from './model-host.ts';
import { HttpFailure, readBody, requestPath, sendFailure, sendJson, v2Route, writeJson } from './oip/http.ts';
import { jsonResponseChunks } from './oip/json.ts';
import { inferJson, restFailure, servedModel } from './rest-infer.ts';
import { RUNTIME_NAME, RUNTIME_VERSION } from './version.ts';

export interface HttpServerOptions {
  logger: Logger;
  /** Largest request body, in bytes (the gRPC server's message limit). */
  maxMessageBytes: number;
  /** Longest a request's body may take to arrive, from the request's arrival (PYML_RECEIVE_TIMEOUT_MS). */
  receiveTimeoutMs: number;
}

/** Longest a request body may go without a byte arriving (the receive timeout bounds it as a whole, and this is capped by it). */
const BODY_IDLE_MS = 5_000;
/** Longest the request line and headers may take. */
const HEADERS_MS = 10_000;

/**
 * The image's own V2 REST server (HTTP/1.1, keep-alive), beside its gRPC server in the process that holds the model:
 * one hop for a plain `docker run -p` or a Service in front of one model. Same routes, status codes and error
 * bodies as `pyml serve`'s HTTP front (the routing and body handling are shared, in oip/http.ts); an infer body is
 * parsed once, straight into typed arrays, goes through the same predictor as a gRPC call (batcher, concurrency
 * limit, the signature's checks), and the answer is written from the output arrays without an object per element.
 */
export class ModelHttpServer {
  private readonly server: Server;
  private host?: ModelHost;
  private predictor?: Predictor;
  private draining = false;
  /** Requests being answered: a drain tells them to close their connection after the answer. */
  private readonly answering = new Set<ServerResponse>();

  constructor(private readonly options: HttpServerOptions) {
    // Node's own timeouts are the backstop (408 and a closed socket) for what readBody's timers do not see: headers
    // that never end, and a request still arriving past its receive timeout. They are checked every second.
    const requestTimeout = options.receiveTimeoutMs + 5_000;
    this.server = createServer({ requestTimeout, headersTimeout: Math.min(HEADERS_MS, requestTimeout), connectionsCheckingInterval: 1_000 },
      (req, res) => void this.handle(req, res));
    this.server.keepAliveTimeout = 65_000;
    // A listening server's error (none expected) is logged rather than left to crash the process.
    this.server.on('error', (error) => options.logger.error('HTTP server error', { error: describeError(error) }));
  }

  /** Listens on `host:port` (port 0: any free one); resolves with the bound port. */
  listen(host: string, port: number): Promise<number> {
    return new Promise((resolve, reject) => {
      const failed = (error: Error) => reject(new Error(`cannot listen for HTTP on ${host}:${port}: ${error.message}`));
      this.server.once('error', failed);
      this.server.listen(port, host, () => {
        this.server.off('error', failed);
        resolve((this.server.address() as AddressInfo).port);
      });
    });
  }

  /** Serves this model from now on. */
  attach(host: ModelHost, predictor: Predictor): void {
    this.host = host;
    this.predictor = predictor;
  }

  get ready(): boolean {
    return this.host !== undefined && !this.draining;
  }

  forceShutdown(): void {
    this.server.close();
    this.server.closeAllConnections();
  }

  /**
   * Takes no new connections and resolves once every connection has ended: idle keep-alive connections are closed
   * now, busy ones after their answer (which says `connection: close`). False if `graceMs` ran out first; the
   * connections left are then cut.
   */
  async drain(graceMs: number): Promise<boolean> {
    this.draining = true;
    for (const res of this.answering) if (!res.headersSent) res.setHeader('connection', 'close');
    const closed = new Promise<void>((resolve) => this.server.close(() => resolve()));
    this.server.closeIdleConnections();
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<false>((resolve) => { timer = setTimeout(() => resolve(false), graceMs); });
    const clean = await Promise.race([closed.then(() => true as const), timeout]);
    clearTimeout(timer);
    if (!clean) this.server.closeAllConnections();
    return clean;
  }

  private async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    // A request's receive timeout runs from its arrival.
    const arrived = Date.now();
    if (this.draining) res.setHeader('connection', 'close');
    this.answering.add(res);
    res.once('close', () => {
      this.answering.delete(res);
      // An answer that was already under way when the drain began kept its connection: close it now it is idle.
      if (this.draining) setImmediate(() => this.server.closeIdleConnections());
    });
    try {
      const route = v2Route(req.method, requestPath(req.url));
      switch (route.kind) {
        case 'live': return sendJson(res, 200, { live: true });
        case 'ready': return sendJson(res, this.ready ? 200 : 400, { ready: this.ready });
        case 'server': return sendJson(res, 200, { name: RUNTIME_NAME, version: RUNTIME_VERSION, extensions: [] });
        case 'model-ready': {
          const host = this.model(route.name, '', false);
          const ready = this.ready && !!host && (!route.version || route.version === host.version);
          return sendJson(res, ready ? 200 : 400, { name: route.name, ready });
        }
        case 'model': {
          const host = this.model(route.name, route.version, true)!;
          const spec = (s: { name: string; dtype: string; shape: readonly number[] }) => ({ name: s.name, datatype: s.dtype, shape: s.shape });
          return sendJson(res, 200, {
            name: host.name, versions: [host.version], platform: `pyml-${host.kind}`,
            inputs: host.signature.inputs.map(spec), outputs: host.signature.outputs.map(spec),
          });
        }
        case 'infer': return await this.infer(req, res, route.name, route.version, arrived);
      }
    } catch (error) {
      this.fail(res, error);
    }
  }

  private model(name: string, version: string, needed: boolean): ModelHost | undefined {
    return servedModel(this.host, name, version, needed);
  }

  private async infer(req: IncomingMessage, res: ServerResponse, name: string, version: string, arrived: number): Promise<void> {
    const host = this.model(name, version, true)!;
    const { maxMessageBytes, receiveTimeoutMs } = this.options;
    const body = await readBody(req, {
      maxBytes: maxMessageBytes, deadline: arrived + receiveTimeoutMs, idleMs: Math.min(BODY_IDLE_MS, receiveTimeoutMs),
      sizeSetting: '--max-message-bytes', deadlineSetting: `${receiveTimeoutMs} ms, PYML_RECEIVE_TIMEOUT_MS`,
    });
    await writeJson(res, jsonResponseChunks(await inferJson(host, this.predictor!, body, maxMessageBytes)));
  }

  /** The answer to a failed request, as `pyml serve` gives it: the caller's errors 4xx, the model's and ours 500. */
  private fail(res: ServerResponse, error: unknown): void {
    try {
      const failure = restFailure(error, this.options.logger);
      sendFailure(res, failure.status, failure.message, failure.close);
    } catch (unexpected) {
      // Whatever happens, the request is not left hanging.
      this.options.logger.error('cannot answer a failed request', { error: describeError(unexpected) });
      res.destroy();
    }
  }
}
