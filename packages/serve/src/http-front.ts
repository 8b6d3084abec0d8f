import { type IncomingMessage, type Server, type ServerResponse, createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { InvalidInputError } from '@pyml/runtime/errors';
import { decodeFlag, decodeInferResponse, decodeModelMetadata, encodeInferRequest, encodeModelRef } from '@pyml/runtime/oip/codec';
import { formatJsonResponse, parseJsonRequest } from '@pyml/runtime/oip/json';
import { RUNTIME_VERSION } from '@pyml/runtime/version';
import { CallerGone } from './caller-gone.ts';
import type { ServiceMetrics } from './metrics.ts';
import type { ModelRouter } from './model-router.ts';
import { RpcFailure, httpStatusFor } from './rpc-failure.ts';

const MODEL_PATH = /^\/v2\/models\/([^/]+)(?:\/versions\/([^/]+))?(\/ready|\/infer)?$/;

class HttpFailure extends Error {
  constructor(readonly status: number, message: string) {
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
    this.server = createServer((req, res) => void this.handle(req, res));
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
    try {
      const url = new URL(req.url ?? '/', 'http://localhost');
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
      const [, name, version = '', action] = m.map((s) => (s === undefined ? s : decodeURIComponent(s)));
      if (action === '/infer') {
        if (req.method !== 'POST') throw new HttpFailure(405, `${path} takes POST`);
        return await this.infer(req, res, name, version);
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
      if (!res.headersSent) send(res, code, { error: message });
      else res.destroy();
    }
  }

  private async infer(req: IncomingMessage, res: ServerResponse, name: string, version: string): Promise<void> {
    const model = this.router.find(name);
    let parsed;
    try {
      const body = await readBody(req, this.maxMessageBytes);
      let json: unknown;
      try {
        json = JSON.parse(body.toString('utf8'));
      } catch (error) {
        throw new InvalidInputError(`request body is not JSON: ${(error as Error).message}`);
      }
      parsed = parseJsonRequest(json);
    } catch (error) {
      // Failures before routing still count against the model.
      this.metrics.requests.inc({ model: model.name, protocol: 'http' });
      this.metrics.errors.inc({ model: model.name, protocol: 'http', code: error instanceof HttpFailure ? 'RESOURCE_EXHAUSTED' : 'INVALID_ARGUMENT' });
      throw error;
    }
    const request = encodeInferRequest({
      modelName: model.name, modelVersion: version, id: parsed.id ?? '', inputs: parsed.inputs,
      outputs: parsed.outputs.map((o) => ({ name: o })), raw: true,
    });
    const gone = new CallerGone();
    // The client hung up before the answer: call the model off too.
    res.once('close', () => { if (!res.writableFinished) gone.fire(); });
    const response = decodeInferResponse(await this.router.infer(request, 'http', undefined, model.name, gone));
    const text = formatJsonResponse({ modelName: response.modelName, modelVersion: response.modelVersion, id: response.id || undefined, outputs: response.outputs });
    res.writeHead(200, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text) }).end(text);
  }
}

function send(res: ServerResponse, code: number, body: unknown): void {
  const text = JSON.stringify(body);
  res.writeHead(code, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text) }).end(text);
}

function readBody(req: IncomingMessage, limit: number): Promise<Buffer> {
  const declared = Number(req.headers['content-length']);
  if (declared > limit) {
    req.resume();
    return Promise.reject(new HttpFailure(413, `request body of ${declared} bytes is over the limit of ${limit} bytes (--max-message-bytes)`));
  }
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    req.on('data', (chunk: Buffer) => {
      size += chunk.length;
      if (size > limit) {
        reject(new HttpFailure(413, `request body is over the limit of ${limit} bytes (--max-message-bytes)`));
        req.removeAllListeners('data');
        req.resume();
        return;
      }
      chunks.push(chunk);
    });
    req.on('end', () => resolve(Buffer.concat(chunks)));
    req.on('error', reject);
  });
}
