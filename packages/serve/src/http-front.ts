import { type IncomingMessage, type Server, type ServerResponse, createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import {
  InvalidInputError, decodeFlag, decodeInferResponse, decodeModelMetadata, encodeInferRequest, encodeModelRef, type JsonInferRequest, jsonResponseChunks, parseJsonBody, RUNTIME_VERSION,
} from '@pyml/runtime/protocol';
import { CallerGone } from './caller-gone.ts';
import type { ServiceMetrics } from './metrics.ts';
import type { ModelRouter } from './model-router.ts';
import { RpcFailure, httpStatusFor } from './rpc-failure.ts';

const MODEL_PATH = /^\/v2\/models\/([^/]+)(?:\/versions\/([^/]+))?(\/ready|\/infer)?$/;

/** Longest a request body may go without a byte arriving (the request's deadline bounds it as a whole). */
const BODY_IDLE_MS = 5_000;
/** Longest the request line and headers may take. */
const HEADERS_MS = 10_000;

class HttpFailure extends Error {
  /** `close`: the connection ends after the answer (the rest of the body is not read). */
  constructor(readonly status: number, message: string, readonly close = false) {
    super(message);
  }
}

/**
 * The V2 REST/JSON front end (KServe's HTTP protocol) and Prometheus `/metrics`, on Node's http. An infer body is
 * parsed once into tensors and encoded once into the binary ModelInferRequest (raw contents) the model takes.
 */
export class HttpFront {
  private readonly server: Server;

  constructor(private readonly router: ModelRouter, private readonly metrics: ServiceMetrics, private readonly maxMessageBytes: number) {
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
    try {
      const url = parseUrl(req.url);
      const path = url.pathname.replace(/\/+$/, '') || '/';
      const get = req.method === 'GET' || req.method === 'HEAD';
      if (path === '/metrics' && get) {
        const text = await this.metrics.registry.metrics();
        res.writeHead(200, { 'content-type': this.metrics.registry.contentType }).end(text);
        return;
      }
      if (path === '/v2/health/live' && get) return send(res, 200, { live: true });
      if (path === '/v2/health/ready' && get) {
        const ready = this.router.allReady;
        return send(res, ready ? 200 : 400, { ready });
      }
      if (path === '/v2' && get) return send(res, 200, { name: 'pyml-serve', version: RUNTIME_VERSION, extensions: [] });
      const m = MODEL_PATH.exec(path);
      if (!m) throw new HttpFailure(404, `no such endpoint: ${req.method} ${path}`);
      const [, name, version = '', action] = m.map((s) => (s === undefined ? s : decodePathPart(s)));
      if (action === '/infer') {
        if (req.method !== 'POST') throw new HttpFailure(405, `${path} takes POST`);
        return await this.infer(req, res, name, version, deadline);
      }
      if (!get) throw new HttpFailure(405, `${path} takes GET`);
      const model = this.router.find(name);
      if (action === '/ready') {
        // The model itself knows its version (as for gRPC ModelReady): a version it does not serve is not ready.
        const ready = model.servable && (!version || decodeFlag(await model.call('ModelReady', encodeModelRef({ name: model.name, version }), this.router.deadline())));
        return send(res, ready ? 200 : 400, { name: model.name, ready });
      }
      // An idle model is started by this call (on demand), like by an inference.
      const meta = decodeModelMetadata(await model.call('ModelMetadata', encodeModelRef({ name: model.name, version }), this.router.deadline()));
      const spec = (s: { name: string; dtype: string; shape: number[] }) => ({ name: s.name, datatype: s.dtype, shape: s.shape });
      send(res, 200, { name: meta.name, versions: meta.versions, platform: meta.platform, inputs: meta.inputs.map(spec), outputs: meta.outputs.map(spec) });
    } catch (error) {
      const [code, message] = error instanceof HttpFailure ? [error.status, error.message]
        : error instanceof RpcFailure ? [httpStatusFor(error.code), error.message]
          : error instanceof InvalidInputError ? [400, error.message]
            : [500, `internal error: ${(error as Error).message}`];
      if (!res.headersSent) send(res, code, { error: message }, error instanceof HttpFailure && error.close);
      else res.destroy();
    }
  }

  private async infer(req: IncomingMessage, res: ServerResponse, name: string, version: string, deadline: number): Promise<void> {
    const model = this.router.find(name);
    let parsed: JsonInferRequest;
    try {
      const body = await readBody(req, this.maxMessageBytes, deadline);
      // Nesting is refused before JSON.parse, and declared shapes against the limit before any tensor is made.
      parsed = parseJsonBody(body, { maxBytes: this.maxMessageBytes });
    } catch (error) {
      // Failures before routing still count against the model.
      this.metrics.requests.inc({ model: model.name, protocol: 'http' });
      this.metrics.errors.inc({ model: model.name, protocol: 'http', code: !(error instanceof HttpFailure) ? 'INVALID_ARGUMENT' : error.status === 408 ? 'DEADLINE_EXCEEDED' : 'RESOURCE_EXHAUSTED' });
      throw error;
    }
    const request = encodeInferRequest({
      modelName: model.name, modelVersion: version, id: parsed.id ?? '', inputs: parsed.inputs,
      outputs: parsed.outputs.map((o) => ({ name: o })), raw: true,
    });
    const gone = new CallerGone();
    // The client hung up before the answer: call the model off too.
    res.once('close', () => { if (!res.writableFinished) gone.fire(); });
    const response = decodeInferResponse(await this.router.infer(request, 'http', deadline, model.name, gone));
    await writeJson(res, jsonResponseChunks({ modelName: response.modelName, modelVersion: response.modelVersion, id: response.id || undefined, outputs: response.outputs }));
  }
}

/** Pieces of text below this size are gathered and written at once (with a Content-Length, as small answers always were). */
const WRITE_AT_ONCE = 64 * 1024;

/**
 * Writes a JSON answer made piece by piece. A small one goes out in one write with its Content-Length; a large one
 * is streamed (chunked), waiting for the socket to drain, so the service never holds the whole text of a large
 * answer (3M rows of probabilities are ~200 MB of JSON) nor buffers it all in the socket.
 */
async function writeJson(res: ServerResponse, chunks: Iterable<string>): Promise<void> {
  const pending: string[] = [];
  let size = 0;
  let streaming = false;
  for (const chunk of chunks) {
    pending.push(chunk);
    size += chunk.length;
    if (size < WRITE_AT_ONCE) continue;
    if (!streaming) {
      res.writeHead(200, { 'content-type': 'application/json' });
      streaming = true;
    }
    if (res.destroyed) return;
    const more = res.write(pending.join(''));
    pending.length = 0;
    size = 0;
    if (!more) await new Promise<void>((resolve) => { res.once('drain', resolve); res.once('close', resolve); });
  }
  const rest = pending.join('');
  if (!streaming) res.writeHead(200, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(rest) });
  res.end(rest);
}

/** The request's URL; one that does not parse is the caller's error. */
function parseUrl(raw: string | undefined): URL {
  try {
    return new URL(raw ?? '/', 'http://localhost');
  } catch {
    throw new HttpFailure(400, `malformed request URL: ${JSON.stringify(raw)}`);
  }
}

/** A percent-decoded path segment (model name or version); a malformed escape is the caller's error. */
function decodePathPart(part: string): string {
  try {
    return decodeURIComponent(part);
  } catch {
    throw new HttpFailure(400, `malformed percent-encoding in the URL path: ${JSON.stringify(part)}`);
  }
}

function send(res: ServerResponse, code: number, body: unknown, close = false): void {
  const text = JSON.stringify(body);
  res.writeHead(code, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text), ...(close ? { connection: 'close' } : {}) }).end(text);
}

/**
 * The request's body, refused (413) past `limit` bytes, and given up on (408, the connection closed) when it is not
 * all there by `deadline` or no byte came for BODY_IDLE_MS: a slow sender, or a Content-Length larger than what is
 * sent, holds no connection and no slot past that.
 */
function readBody(req: IncomingMessage, limit: number, deadline: number): Promise<Buffer> {
  const declared = Number(req.headers['content-length']);
  if (declared > limit) {
    return Promise.reject(new HttpFailure(413, `request body of ${declared} bytes is over the limit of ${limit} bytes (--max-message-bytes)`, true));
  }
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    let idle: NodeJS.Timeout | undefined;
    const whole = setTimeout(() => fail(new HttpFailure(408, 'the request body did not arrive before the request\'s deadline (--deadline-ms)', true)), Math.max(0, deadline - Date.now()));
    const waitForBytes = () => {
      clearTimeout(idle);
      idle = setTimeout(() => fail(new HttpFailure(408, `no byte of the request body arrived for ${BODY_IDLE_MS} ms`, true)), BODY_IDLE_MS);
    };
    const stop = () => {
      clearTimeout(whole);
      clearTimeout(idle);
      req.removeListener('data', onData);
    };
    const fail = (error: Error) => {
      stop();
      reject(error);
    };
    const onData = (chunk: Buffer) => {
      size += chunk.length;
      if (size > limit) return fail(new HttpFailure(413, `request body is over the limit of ${limit} bytes (--max-message-bytes)`, true));
      chunks.push(chunk);
      waitForBytes();
    };
    waitForBytes();
    req.on('data', onData);
    req.on('end', () => { stop(); resolve(Buffer.concat(chunks)); });
    req.on('error', fail);
  });
}
