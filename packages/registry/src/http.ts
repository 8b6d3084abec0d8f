import http, { type IncomingHttpHeaders, type IncomingMessage } from 'node:http';
import https from 'node:https';
import { Readable } from 'node:stream';

export interface HttpResponse {
  status: number;
  headers: IncomingHttpHeaders;
  body: IncomingMessage;
}

export interface HttpRequest {
  method: string;
  url: string;
  headers?: Record<string, string | number>;
  /** A buffer, or a stream that is piped as the body (its error aborts the request). */
  body?: Buffer | NodeJS.ReadableStream;
  /** Called with the number of body bytes written so far. */
  onBodyProgress?: (bytes: number) => void;
}

const agents = {
  http: new http.Agent({ keepAlive: true, maxSockets: 8 }),
  https: new https.Agent({ keepAlive: true, maxSockets: 8 }),
};

/** A connection-level failure (refused, reset, cut half-way): worth retrying, and named as such in errors. */
export class ConnectionError extends Error {
  constructor(message: string, readonly bytesSent: number) {
    super(message);
  }
}

/** One HTTP exchange. Resolves when the response headers arrive; the caller reads or discards the body. */
export function httpRequest(request: HttpRequest): Promise<HttpResponse> {
  const url = new URL(request.url);
  const secure = url.protocol === 'https:';
  const lib = secure ? https : http;
  return new Promise((resolve, reject) => {
    let sent = 0;
    let settled = false;
    const fail = (error: Error) => {
      if (settled) return;
      settled = true;
      reject(error);
    };
    const req = lib.request(url, { method: request.method, headers: request.headers, agent: secure ? agents.https : agents.http });
    req.on('response', (res) => {
      if (settled) return res.resume();
      settled = true;
      resolve({ status: res.statusCode ?? 0, headers: res.headers, body: res });
    });
    req.on('error', (error: NodeJS.ErrnoException) => {
      const what = error.code === 'ECONNREFUSED' ? 'connection refused'
        : error.code === 'ENOTFOUND' ? 'unknown host'
        : error.code === 'ECONNRESET' || error.message === 'socket hang up' ? `connection closed by the server after ${sent} bytes of the request body`
        : error.message;
      fail(error instanceof BodyError ? error.cause as Error : new ConnectionError(`${request.method} ${url.host}${url.pathname}: ${what}`, sent));
    });
    const body = request.body;
    if (body === undefined) {
      req.end();
    } else if (Buffer.isBuffer(body)) {
      sent = body.length;
      req.end(body);
    } else {
      const stream = body as Readable;
      stream.on('data', (chunk: Buffer) => {
        sent += chunk.length;
        request.onBodyProgress?.(sent);
        if (!req.write(chunk)) {
          stream.pause();
          req.once('drain', () => stream.resume());
        }
      });
      stream.on('end', () => req.end());
      // A bad source blob (digest mismatch) must abort the upload, not let the server see a short body as complete.
      stream.on('error', (error) => req.destroy(new BodyError(error)));
      req.on('close', () => { if (!stream.readableEnded) stream.destroy?.(); });
    }
  });
}

class BodyError extends Error {
  constructor(cause: Error) {
    super(cause.message);
    this.cause = cause;
  }
}

export async function readBody(res: HttpResponse, limit = 8 * 1024 * 1024): Promise<Buffer> {
  const chunks: Buffer[] = [];
  let total = 0;
  for await (const chunk of res.body) {
    total += (chunk as Buffer).length;
    if (total > limit) {
      res.body.destroy();
      throw new Error(`response body is larger than ${limit} bytes`);
    }
    chunks.push(chunk as Buffer);
  }
  return Buffer.concat(chunks);
}

export function discardBody(res: HttpResponse): Promise<void> {
  return new Promise((resolve) => {
    res.body.on('end', resolve).on('error', () => resolve()).on('close', resolve);
    res.body.resume();
  });
}

/** The registry's error body (`{"errors":[{"code","message"}]}`) in one line, or the start of the body. */
export async function describeErrorBody(res: HttpResponse): Promise<string> {
  const text = (await readBody(res, 1 << 20).catch(() => Buffer.alloc(0))).toString('utf8');
  try {
    const parsed = JSON.parse(text) as { errors?: { code?: string; message?: string }[] };
    if (Array.isArray(parsed.errors) && parsed.errors.length) return parsed.errors.map((e) => `${e.code ?? ''} ${e.message ?? ''}`.trim()).join('; ');
  } catch { /* not JSON */ }
  return text.trim().slice(0, 200);
}

export { Readable };
