import type { IncomingMessage, ServerResponse } from 'node:http';

/**
 * The V2 REST protocol's transport pieces, shared by the image's own HTTP server and `pyml serve`'s HTTP front, so
 * a client cannot tell the two apart: the routes, reading a bounded body under deadlines, and writing JSON answers
 * (errors as `{"error": "..."}`). Only node:http's types: nothing here starts a server.
 */

/** A failure that already knows its HTTP status. */
export class HttpFailure extends Error {
  /** `close`: the connection ends after the answer (the rest of the body is not read). */
  constructor(readonly status: number, message: string, readonly close = false) {
    super(message);
  }
}

/** A V2 REST endpoint, from the request's method and path. */
export type V2Route =
  | { kind: 'live' | 'ready' | 'server' }
  | { kind: 'model' | 'model-ready' | 'infer'; name: string; version: string };

const PLAIN_PATH = /^\/(?!\/)[A-Za-z0-9._~/-]*$/;
const DOT_SEGMENT = /\/\.\.?(?:\/|$)/;
const MODEL_PATH = /^\/v2\/models\/([^/]+)(?:\/versions\/([^/]+))?(\/ready|\/infer)?$/;

/** The request's path without trailing slashes; a URL that does not parse is the caller's error. */
export function requestPath(raw: string | undefined): string {
  // A plain path (no query, escapes or dot segments) is its own pathname: no URL object per request.
  if (raw !== undefined && PLAIN_PATH.test(raw) && !DOT_SEGMENT.test(raw)) return raw.replace(/\/+$/, '') || '/';
  let url: URL;
  try {
    url = new URL(raw ?? '/', 'http://localhost');
  } catch {
    throw new HttpFailure(400, `malformed request URL: ${JSON.stringify(raw)}`);
  }
  return url.pathname.replace(/\/+$/, '') || '/';
}

/** Whether a method reads (GET, or HEAD: the same answer without its body). */
export function isRead(method: string | undefined): boolean {
  return method === 'GET' || method === 'HEAD';
}

/** The V2 endpoint at `path`: 404 for no endpoint, 405 for the wrong method. */
export function v2Route(method: string | undefined, path: string): V2Route {
  const read = isRead(method);
  if (read && path === '/v2/health/live') return { kind: 'live' };
  if (read && path === '/v2/health/ready') return { kind: 'ready' };
  if (read && path === '/v2') return { kind: 'server' };
  const m = MODEL_PATH.exec(path);
  if (!m) throw new HttpFailure(404, `no such endpoint: ${method} ${path}`);
  const name = decodePathPart(m[1]);
  const version = m[2] === undefined ? '' : decodePathPart(m[2]);
  if (m[3] === '/infer') {
    if (method !== 'POST') throw new HttpFailure(405, `${path} takes POST`);
    return { kind: 'infer', name, version };
  }
  if (!read) throw new HttpFailure(405, `${path} takes GET`);
  return { kind: m[3] === '/ready' ? 'model-ready' : 'model', name, version };
}

/** A percent-decoded path segment (model name or version); a malformed escape is the caller's error. */
function decodePathPart(part: string): string {
  try {
    return decodeURIComponent(part);
  } catch {
    throw new HttpFailure(400, `malformed percent-encoding in the URL path: ${JSON.stringify(part)}`);
  }
}

/** A small JSON answer in one write, with its Content-Length. */
export function sendJson(res: ServerResponse, code: number, body: unknown, close = false): void {
  const text = JSON.stringify(body);
  res.writeHead(code, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text), ...(close ? { connection: 'close' } : {}) }).end(text);
}

/** A failed request's answer, `{"error": message}`; once the answer has begun, the connection is cut instead. */
export function sendFailure(res: ServerResponse, code: number, message: string, close = false): void {
  if (!res.headersSent) sendJson(res, code, { error: message }, close);
  else res.destroy();
}

/** Pieces of text below this size are gathered and written at once (with a Content-Length, as small answers always were). */
const WRITE_AT_ONCE = 64 * 1024;

/**
 * Writes a JSON answer made piece by piece (jsonResponseChunks). A small one goes out in one write with its
 * Content-Length; a large one is streamed (chunked), waiting for the socket to drain, so the server never holds the
 * whole text of a large answer (3M rows of probabilities are ~200 MB of JSON) nor buffers it all in the socket.
 */
export async function writeJson(res: ServerResponse, chunks: Iterable<string>): Promise<void> {
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

export interface BodyLimits {
  /** Largest body, in bytes. */
  maxBytes: number;
  /** When the whole body must be in (epoch ms). */
  deadline: number;
  /** Longest the body may go without a byte arriving. */
  idleMs: number;
  /** What sets each limit, named in the error (`--max-message-bytes`, `--deadline-ms`). */
  sizeSetting: string;
  deadlineSetting: string;
}

/**
 * The request's body, refused (413) past `maxBytes`, and given up on (408, the connection closed) when it is not
 * all there by `deadline` or no byte came for `idleMs`: a slow sender, or a Content-Length larger than what is
 * sent, holds no connection and no slot past that.
 */
export function readBody(req: IncomingMessage, limits: BodyLimits): Promise<Buffer> {
  const { maxBytes, deadline, idleMs } = limits;
  const declared = Number(req.headers['content-length']);
  if (declared > maxBytes) {
    return Promise.reject(new HttpFailure(413, `request body of ${declared} bytes is over the limit of ${maxBytes} bytes (${limits.sizeSetting})`, true));
  }
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    let lastByteAt = Date.now();
    // One timer for both limits, armed for the nearer one and checked when it fires: a body that arrives in one
    // piece (most do) costs one timer, not one per chunk.
    let timer: NodeJS.Timeout | undefined;
    const arm = () => {
      timer = setTimeout(check, Math.max(0, Math.min(deadline, lastByteAt + idleMs) - Date.now()));
    };
    const check = () => {
      const now = Date.now();
      if (now >= deadline) return fail(new HttpFailure(408, `the request body did not arrive before the request's deadline (${limits.deadlineSetting})`, true));
      if (now - lastByteAt >= idleMs) return fail(new HttpFailure(408, `no byte of the request body arrived for ${idleMs} ms`, true));
      arm();
    };
    const stop = () => {
      clearTimeout(timer);
      req.removeListener('data', onData);
    };
    const fail = (error: Error) => {
      stop();
      reject(error);
    };
    const onData = (chunk: Buffer) => {
      size += chunk.length;
      if (size > maxBytes) return fail(new HttpFailure(413, `request body is over the limit of ${maxBytes} bytes (${limits.sizeSetting})`, true));
      chunks.push(chunk);
      lastByteAt = Date.now();
    };
    arm();
    req.on('data', onData);
    req.on('end', () => { stop(); resolve(chunks.length === 1 ? chunks[0] : Buffer.concat(chunks, size)); });
    req.on('error', fail);
  });
}
