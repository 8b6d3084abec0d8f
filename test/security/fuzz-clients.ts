import { readFileSync } from 'node:fs';
import http from 'node:http';
import http2 from 'node:http2';
import net from 'node:net';
import * as grpc from '@grpc/grpc-js';

/** Real clients for the fuzz suite: node:http with raw paths and bodies, grpc-js with raw message bytes, raw HTTP/2. */

export interface RestAnswer {
  status: number;
  text: string;
  ms: number;
}

const agent = new http.Agent({ keepAlive: true, maxSockets: 8 });

/** One HTTP request exactly as given (path not normalised, body as bytes). */
export function rest(base: string, method: string, path: string, body?: Buffer, headers: Record<string, string> = {}): Promise<RestAnswer> {
  const [host, port] = base.split(':');
  const started = Date.now();
  return new Promise((resolve, reject) => {
    // Content-Length always: Node sends a GET's body without one (no chunking for GET), which the server would then
    // read as the next request on the connection.
    const length: Record<string, string> = body ? { 'content-length': String(body.length) } : {};
    const req = http.request({ host, port: Number(port), method, path, agent, headers: { 'content-type': 'application/json', ...length, ...headers } }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, text: Buffer.concat(chunks).toString('utf8'), ms: Date.now() - started }));
      res.on('error', reject);
    });
    req.on('error', reject);
    req.end(body);
  });
}

export function closeRestAgent(): void {
  agent.destroy();
}

export interface GrpcAnswer {
  code: grpc.status;
  details: string;
  metadata?: grpc.Metadata;
  response?: Buffer;
  ms: number;
}

const identity = (b: Buffer): Buffer => b;
const PATHS: Record<string, string> = {
  ModelInfer: '/inference.GRPCInferenceService/ModelInfer',
  ModelReady: '/inference.GRPCInferenceService/ModelReady',
  ModelMetadata: '/inference.GRPCInferenceService/ModelMetadata',
  Check: '/grpc.health.v1.Health/Check',
};

/** A grpc-js client that sends and receives message bytes as they are. */
export function rawGrpcClient(target: string): grpc.Client {
  const address = target.startsWith('/') ? `unix:${target}` : target;
  return new grpc.Client(address, grpc.credentials.createInsecure(), { 'grpc.max_receive_message_length': -1, 'grpc.max_send_message_length': -1 });
}

export function rawUnary(client: grpc.Client, method: string, bytes: Buffer, deadlineMs: number): Promise<GrpcAnswer> {
  const started = Date.now();
  return new Promise((resolve) => {
    const call = client.makeUnaryRequest(PATHS[method] ?? method, identity, identity, bytes, new grpc.Metadata(), { deadline: Date.now() + deadlineMs },
      (error: grpc.ServiceError | null, response?: Buffer) => {
        if (error) resolve({ code: error.code, details: error.details, metadata: error.metadata, ms: Date.now() - started });
        else resolve({ code: grpc.status.OK, details: '', response, ms: Date.now() - started });
      });
    void call;
  });
}

export interface Http2Answer {
  /** grpc-status from trailers or trailers-only headers; undefined when the stream ended without one. */
  grpcStatus?: number;
  grpcMessage?: string;
  ms: number;
}

/**
 * A gRPC call over raw HTTP/2, for what grpc-js will not send: a request that never ends, a hand-made compressed
 * frame. Resolves with the status the server sent, or without one when the stream closed first.
 */
export function rawHttp2Call(address: string, path: string, opts: { headers?: Record<string, string>; data?: Buffer; endStream: boolean; giveUpMs: number }): Promise<Http2Answer> {
  const started = Date.now();
  return new Promise((resolve) => {
    // A path is a Unix socket (the model's); anything else HOST:PORT.
    const session = address.startsWith('/') ? http2.connect('http://localhost', { createConnection: () => net.connect(address) }) : http2.connect(`http://${address}`);
    session.on('error', () => {});
    const stream = session.request({ ':method': 'POST', ':path': path, 'content-type': 'application/grpc', te: 'trailers', ...opts.headers }, { endStream: false });
    let answer: Http2Answer | undefined;
    const done = () => {
      clearTimeout(giveUp);
      resolve(answer ?? { ms: Date.now() - started });
      session.destroy();
    };
    const giveUp = setTimeout(done, opts.giveUpMs);
    const note = (headers: http2.IncomingHttpHeaders) => {
      if (headers['grpc-status'] !== undefined) answer = { grpcStatus: Number(headers['grpc-status']), grpcMessage: decodeURI(String(headers['grpc-message'] ?? '')), ms: Date.now() - started };
    };
    stream.on('response', note);
    stream.on('trailers', note);
    stream.on('data', () => {});
    stream.on('error', () => {});
    stream.on('close', done);
    if (opts.data) stream.write(opts.data);
    if (opts.endStream) stream.end();
  });
}

/** A gRPC length-prefixed message; `compressed` sets the flag byte. */
export function grpcFrame(message: Buffer, compressed = false): Buffer {
  const prefix = Buffer.alloc(5);
  prefix[0] = compressed ? 1 : 0;
  prefix.writeUInt32BE(message.length, 1);
  return Buffer.concat([prefix, message]);
}

/**
 * Raw bytes on a TCP connection to the HTTP port, for what no HTTP client sends: a body trickled a byte at a time,
 * a Content-Length larger than the body. Resolves when the server closes the connection (or `giveUpMs` passes),
 * with what it answered.
 */
export function rawHttp(base: string, head: string, trickle: { bytes: Buffer; everyMs: number }, giveUpMs: number): Promise<{ answer: string; closedAfterMs?: number }> {
  const [host, port] = base.split(':');
  const started = Date.now();
  return new Promise((resolve) => {
    const socket = net.connect(Number(port), host);
    let answer = '';
    let sent = 0;
    let timer: NodeJS.Timeout | undefined;
    const finish = (closed: boolean) => {
      clearInterval(timer);
      clearTimeout(giveUp);
      socket.destroy();
      resolve({ answer, closedAfterMs: closed ? Date.now() - started : undefined });
    };
    const giveUp = setTimeout(() => finish(false), giveUpMs);
    socket.on('data', (d) => { answer += d.toString(); });
    socket.on('error', () => {});
    socket.on('close', () => finish(true));
    socket.write(head);
    if (trickle.bytes.length) {
      timer = setInterval(() => {
        if (sent < trickle.bytes.length && !socket.destroyed) socket.write(trickle.bytes.subarray(sent, ++sent));
      }, trickle.everyMs);
    }
  });
}

/** Resident set size of a process, in MB, from /proc. */
export function rssMb(pid: number): number {
  const match = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  if (!match) throw new Error(`no VmRSS for pid ${pid}`);
  return Number(match[1]) / 1024;
}

/** Runs `tasks` with at most `width` at once. */
export async function pool<T>(count: number, width: number, task: (i: number) => Promise<T>): Promise<T[]> {
  const results: T[] = new Array(count);
  let next = 0;
  const worker = async () => {
    while (next < count) {
      const i = next++;
      results[i] = await task(i);
    }
  };
  await Promise.all(Array.from({ length: width }, worker));
  return results;
}
