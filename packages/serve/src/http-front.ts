import { type IncomingMessage, type Server, type ServerResponse, createServer } from 'node:http';
import { type AccessLog, requestText } from './access-log.ts';
import type { AddressInfo } from 'node:net';
import {
  FrameFailure, HttpFailure, InvalidInputError, RESULT_JSON, decodeFlag, decodeInferResponse, decodeModelMetadata, encodeInferRequest, encodeModelRef, isRead, type JsonInferRequest,
  jsonResponseChunks, parseJsonBody, readBody, requestPath, RUNTIME_VERSION, sendFailure, sendJson, v2Route, writeJson,
} from '@pyml/runtime/protocol';
import { CallerGone } from './caller-gone.ts';
import type { PageRoutes } from './console/routes.ts';
import type { ServiceMetrics } from './metrics.ts';
import type { ModelEndpoint } from './model-endpoint.ts';
import type { ModelRouter } from './model-router.ts';
import type { ModelRepository } from './repository.ts';
import { serveRepositoryRoute } from './repository-http.ts';
import { ROUTING_KEY_HEADER } from './split.ts';
import { RpcFailure, httpStatusFor } from './rpc-failure.ts';

/** Longest a request body may go without a byte arriving (the request's deadline bounds it as a whole). */
const BODY_IDLE_MS = 5_000;
/** Longest the request line and headers may take. */
const HEADERS_MS = 10_000;

/**
 * The V2 REST/JSON front end (KServe's HTTP protocol) and Prometheus `/metrics`, on Node's http. An infer body goes
 * to a model reached through the framed protocol as it came (parsed once, in the model's process, which answers with
 * the JSON text); for a model reached over gRPC, or one whose calls the front merges, it is parsed here once into
 * tensors and encoded once into the binary ModelInferRequest (raw contents).
 */
export class HttpFront {
  private readonly server: Server;
  /** GET routes answered before the V2 ones: the console and the OpenAPI documents (absent with --no-console). */
  pages?: PageRoutes;
  /** The model repository behind `/v2/repository/...` (absent without --repository: those routes answer 404). */
  repository?: ModelRepository;

  constructor(private readonly router: ModelRouter, private readonly metrics: ServiceMetrics, private readonly maxMessageBytes: number, private readonly access?: AccessLog) {
    // Node's own timeouts are the backstop (408 and a closed socket) for what readBody's timers do not see: headers
    // that never end, and a request still arriving past its deadline. They are checked every second.
    const requestTimeout = router.deadlineMs + 5_000;
    this.server = createServer({ requestTimeout, headersTimeout: Math.min(HEADERS_MS, requestTimeout), connectionsCheckingInterval: 1_000 },
      (req, res) => void this.handle(req, res));
    this.server.keepAliveTimeout = 65_000;
  }

  listen(host: string, port: number): Promise<number> {
    return new Promise((resolve, reject) => {
      this.server.once('error', (error) => reject(new Error(`cannot listen for HTTP on ${host}:${port}: ${error.message}`)));
      this.server.listen(port, host, () => resolve((this.server.address() as AddressInfo).port));
    });
  }

  close(): Promise<void> {
    return new Promise((resolve) => {
      this.server.close(() => resolve());
      this.server.closeIdleConnections();
    });
  }

  private async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    // A request's deadline runs from its arrival: reading its body counts.
    const deadline = Date.now() + this.router.deadlineMs;
    if (this.access) {
      const started = performance.now();
      const log = this.access;
      res.once('close', () => log({ protocol: 'http', request: requestText(req.method, req.url), status: res.statusCode, ms: performance.now() - started }));
    }
    try {
      const path = requestPath(req.url);
      if (path === '/metrics' && isRead(req.method)) {
        const text = await this.metrics.registry.metrics();
        res.writeHead(200, { 'content-type': this.metrics.registry.contentType }).end(text);
        return;
      }
      if (this.pages && isRead(req.method) && await this.pages.serve(req, res, path)) return;
      if (path.startsWith('/v2/repository/') && await serveRepositoryRoute(this.repository, req, res, path, { maxBytes: this.maxMessageBytes, deadline })) return;
      const route = v2Route(req.method, path);
      switch (route.kind) {
        case 'live': return sendJson(res, 200, { live: true });
        case 'ready': {
          const ready = this.router.allReady;
          return sendJson(res, ready ? 200 : 400, { ready });
        }
        case 'server': return sendJson(res, 200, { name: 'pyml-serve', version: RUNTIME_VERSION, extensions: [] });
        case 'infer': return await this.infer(req, res, route.name, route.version, deadline);
        case 'model-ready': {
          const model = this.router.find(route.name, route.version);
          // The model itself knows its version (as for gRPC ModelReady): a version it does not serve is not ready.
          const ready = model.servable && (!route.version || decodeFlag(await model.call('ModelReady', encodeModelRef({ name: model.name, version: route.version }), this.router.deadline())));
          return sendJson(res, ready ? 200 : 400, { name: model.name, ready });
        }
        case 'model': {
          const model = this.router.find(route.name, route.version);
          // An idle model is started by this call (on demand), like by an inference.
          const meta = decodeModelMetadata(await model.call('ModelMetadata', encodeModelRef({ name: model.name, version: route.version }), this.router.deadline()));
          const spec = (s: { name: string; dtype: string; shape: number[] }) => ({ name: s.name, datatype: s.dtype, shape: s.shape });
          return sendJson(res, 200, { name: meta.name, versions: meta.versions, platform: meta.platform, inputs: meta.inputs.map(spec), outputs: meta.outputs.map(spec) });
        }
      }
    } catch (error) {
      const [code, message] = error instanceof HttpFailure ? [error.status, error.message]
        : error instanceof RpcFailure ? [(error instanceof FrameFailure ? error.httpStatus : undefined) ?? httpStatusFor(error.code), error.message]
          : error instanceof InvalidInputError ? [400, error.message]
            : [500, `internal error: ${(error as Error).message}`];
      sendFailure(res, code, message, error instanceof HttpFailure && error.close);
    }
  }

  private async infer(req: IncomingMessage, res: ServerResponse, name: string, version: string, deadline: number): Promise<void> {
    // A split keeps one caller on one version by this header (see split.ts).
    const key = req.headers[ROUTING_KEY_HEADER];
    const routingKey = typeof key === 'string' && key !== '' ? key : undefined;
    const picked = this.router.find(name, version, routingKey);
    let body: Buffer;
    try {
      body = await readBody(req, { maxBytes: this.maxMessageBytes, deadline, idleMs: BODY_IDLE_MS, sizeSetting: '--max-message-bytes', deadlineSetting: '--deadline-ms' });
    } catch (error) {
      // Failures before routing still count against the model.
      this.countRefused(picked, error);
      throw error;
    }
    // Picked again now the body is here: a version retired while it arrived is no longer routed to.
    const model = this.router.find(name, version, routingKey);
    const gone = new CallerGone();
    // The client hung up before the answer: call the model off too.
    res.once('close', () => { if (!res.writableFinished) gone.fire(); });
    if (model.takesJson) {
      // The body goes to the model as it came (the framed protocol): parsed once, there.
      const answer = await this.router.inferJson(body, version, model, deadline, gone);
      if (answer.kind === RESULT_JSON) {
        res.writeHead(200, { 'content-type': 'application/json', 'content-length': answer.body.length }).end(answer.body);
        return;
      }
      return this.writeResponse(res, answer.body);
    }
    let parsed: JsonInferRequest;
    try {
      // Nesting is refused before JSON.parse, and declared shapes against the limit before any tensor is made.
      parsed = parseJsonBody(body, { maxBytes: this.maxMessageBytes });
    } catch (error) {
      this.countRefused(model, error);
      throw error;
    }
    const request = encodeInferRequest({
      modelName: model.name, modelVersion: version, id: parsed.id ?? '', inputs: parsed.inputs,
      outputs: parsed.outputs.map((o) => ({ name: o })), raw: true,
    });
    await this.writeResponse(res, await this.router.infer(request, 'http', deadline, model.name, gone, routingKey));
  }

  /** A ModelInferResponse's bytes as the V2 JSON answer, written as it is made. */
  private writeResponse(res: ServerResponse, message: Buffer): Promise<void> {
    const response = decodeInferResponse(message);
    return writeJson(res, jsonResponseChunks({ modelName: response.modelName, modelVersion: response.modelVersion, id: response.id || undefined, outputs: response.outputs }));
  }

  private countRefused(endpoint: ModelEndpoint, error: unknown): void {
    const labels = { model: endpoint.name, version: this.router.version(endpoint), protocol: 'http' };
    this.metrics.requests.inc(labels);
    const code = !(error instanceof HttpFailure) ? 'INVALID_ARGUMENT' : error.status === 408 ? 'DEADLINE_EXCEEDED' : 'RESOURCE_EXHAUSTED';
    this.metrics.errors.inc({ ...labels, code });
    this.router.onFailure?.(endpoint.name, labels.version, 'http', code, (error as Error).message);
  }
}
