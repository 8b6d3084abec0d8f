import { type ChildProcess, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import http2 from 'node:http2';
import { rm, writeFile } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { Metadata, status } from '@grpc/grpc-js';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { ModelConnection } from '../../packages/serve/src/model-connection.ts';
import type { RpcFailure } from '../../packages/serve/src/rpc-failure.ts';
import { REPO } from '../helpers/cli.ts';
import { tempDir } from '../helpers/project.ts';

/**
 * ModelConnection (node:http2 gRPC client) against a real @grpc/grpc-js server on a Unix socket, run as a child
 * process so a test can kill it with SIGKILL. The server prints one JSON line per event (ready, started, cancelled).
 */

const GRPC_JS = pathToFileURL(createRequire(import.meta.url).resolve('@grpc/grpc-js')).href;
const SERVER = `
import grpc from '${GRPC_JS}';
const { Server, ServerCredentials, Metadata, status } = grpc;
const socket = process.argv[2];
const say = (event) => process.stdout.write(JSON.stringify(event) + '\\n');
const identity = (b) => b;
const method = (name) => ({ path: '/test.Raw/' + name, requestStream: false, responseStream: false,
  requestSerialize: identity, requestDeserialize: identity, responseSerialize: identity, responseDeserialize: identity });
const names = ['Echo', 'Seen', 'Fail', 'FailTrailersOnly', 'Slow', 'Sized'];
const handlers = {
  Echo: (call, cb) => cb(null, call.request),
  // What arrived with the call: its metadata and how long its deadline gives it.
  Seen: (call, cb) => cb(null, Buffer.from(JSON.stringify({ metadata: call.metadata.getMap(), deadlineInMs: call.getDeadline() - Date.now() }))),
  // Headers first, then an error status in the trailers, with the model's own trailer.
  Fail: (call, cb) => {
    call.sendMetadata(new Metadata());
    const trailer = new Metadata();
    trailer.set('pyml-tensor', 'x');
    setImmediate(() => cb({ code: status.INVALID_ARGUMENT, details: "input 'x': expected FP32, got INT64 (100%)", metadata: trailer }));
  },
  FailTrailersOnly: (call, cb) => {
    const trailer = new Metadata();
    trailer.set('pyml-tensor', 'y');
    cb({ code: status.FAILED_PRECONDITION, details: 'not ready', metadata: trailer });
  },
  // Answers after the number of ms the request says.
  Slow: (call, cb) => {
    const ms = Number(call.request.toString());
    say({ event: 'started', ms });
    const timer = setTimeout(() => cb(null, Buffer.from('late')), ms);
    call.on('cancelled', () => { clearTimeout(timer); say({ event: 'cancelled', ms }); });
  },
  // A response of the size the request says.
  Sized: (call, cb) => cb(null, Buffer.alloc(Number(call.request.toString()), 7)),
};
const server = new Server({ 'grpc.max_receive_message_length': 64 << 20, 'grpc.max_send_message_length': 64 << 20 });
server.addService(Object.fromEntries(names.map((n) => [n, method(n)])), handlers);
server.bindAsync('unix:' + socket, ServerCredentials.createInsecure(), (error) => {
  if (error) { say({ event: 'error', message: error.message }); process.exit(1); }
  say({ event: 'ready' });
});
// A draining server (GOAWAY): calls in flight finish, then it exits.
process.on('SIGTERM', () => server.tryShutdown(() => { say({ event: 'drained' }); process.exit(0); }));
`;

interface ModelServer {
  child: ChildProcess;
  events: Array<{ event: string; ms?: number }>;
  waitFor(event: string): Promise<void>;
  stop(): Promise<void>;
}

let dir: string;
let socket: string;
let serverScript: string;
let server: ModelServer;
let connection: ModelConnection;

async function startServer(): Promise<ModelServer> {
  await rm(socket, { force: true });
  const child = spawn(process.execPath, [serverScript, socket], { cwd: REPO, stdio: ['ignore', 'pipe', 'inherit'] });
  const events: ModelServer['events'] = [];
  const listeners = new Set<() => void>();
  let buffered = '';
  child.stdout!.on('data', (chunk: Buffer) => {
    buffered += chunk.toString();
    let newline: number;
    while ((newline = buffered.indexOf('\n')) >= 0) {
      events.push(JSON.parse(buffered.slice(0, newline)));
      buffered = buffered.slice(newline + 1);
      for (const listener of [...listeners]) listener();
    }
  });
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  const waitFor = (event: string, timeoutMs = 20_000) => new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`test server: no '${event}' within ${timeoutMs} ms (events: ${JSON.stringify(events)})`)), timeoutMs);
    const check = () => {
      if (!events.some((e) => e.event === event)) return;
      listeners.delete(check);
      clearTimeout(timer);
      resolve();
    };
    listeners.add(check);
    check();
  });
  await waitFor('ready');
  return {
    child, events, waitFor,
    async stop() {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
      await exited;
    },
  };
}

function call(path: string, request: Buffer | string, timeoutMs = 10_000, metadata = new Metadata(), on = connection): Promise<{ response?: Buffer; error?: RpcFailure; ms: number }> {
  const started = Date.now();
  return new Promise((resolve) => {
    on.call(`/test.Raw/${path}`, Buffer.from(request), new Date(Date.now() + timeoutMs), metadata, (error, response) => resolve({ error, response, ms: Date.now() - started }));
  });
}

test.before(async () => {
  dir = await tempDir('pyml-model-connection-');
  socket = join(dir, 'model.sock');
  serverScript = join(dir, 'server.mjs');
  await writeFile(serverScript, SERVER);
  server = await startServer();
  connection = new ModelConnection(socket, { maxMessageBytes: 16 << 20 });
});

test.after(async () => {
  connection?.close();
  await server?.stop();
  await rm(dir, { recursive: true, force: true });
});

test('unary round trip of bytes, with the metadata and the remaining deadline sent along', async () => {
  const bytes = randomBytes(1000);
  const echoed = await call('Echo', bytes);
  assert.is(echoed.error, undefined);
  assert.ok(echoed.response!.equals(bytes));

  const metadata = new Metadata();
  metadata.set('x-request-id', 'abc-123');
  const seen = await call('Seen', '', 5000, metadata);
  assert.is(seen.error, undefined);
  const what = JSON.parse(seen.response!.toString()) as { metadata: Record<string, string>; deadlineInMs: number };
  assert.is(what.metadata['x-request-id'], 'abc-123');
  assert.ok(what.deadlineInMs > 3000 && what.deadlineInMs <= 5000, `deadline seen by the server: ${what.deadlineInMs} ms`);

  // Many calls at once share the one connection.
  const many = await Promise.all(Array.from({ length: 50 }, (_, i) => call('Echo', `call ${i}`)));
  assert.equal(many.map((r) => r.response?.toString()), Array.from({ length: 50 }, (_, i) => `call ${i}`));
});

test('an error status keeps its details and the trailer the model set', async () => {
  const { error } = await call('Fail', '');
  assert.ok(error, 'the call failed');
  assert.is(error.code, status.INVALID_ARGUMENT);
  assert.is(error.message, "input 'x': expected FP32, got INT64 (100%)");
  assert.equal(error.metadata?.get('pyml-tensor'), ['x']);
});

test('a trailers-only error (status in the response headers) keeps its details and trailer', async () => {
  const { error } = await call('FailTrailersOnly', '');
  assert.is(error?.code, status.FAILED_PRECONDITION);
  assert.is(error?.message, 'not ready');
  assert.equal(error?.metadata?.get('pyml-tensor'), ['y']);
  const unknown = await call('NoSuchMethod', '');
  assert.is(unknown.error?.code, status.UNIMPLEMENTED);
});

test('deadline exceeded: the call fails at its deadline and the server sees the cancel', async () => {
  const { error, ms } = await call('Slow', '5000', 300);
  assert.is(error?.code, status.DEADLINE_EXCEEDED);
  assert.ok(ms >= 280 && ms < 1500, `failed after ${ms} ms`);
  await server.waitFor('cancelled');
  // The connection serves on.
  assert.is((await call('Echo', 'after')).response?.toString(), 'after');
});

test('cancel() ends the call with the given status and resets the stream', async () => {
  const before = server.events.filter((e) => e.event === 'cancelled').length;
  const result = new Promise<RpcFailure | undefined>((resolve) => {
    const handle = connection.call('/test.Raw/Slow', Buffer.from('4000'), new Date(Date.now() + 10_000), new Metadata(), (error) => resolve(error));
    void waitForEvents(() => server.events.some((e) => e.event === 'started' && e.ms === 4000)).then(() => handle.cancel(status.CANCELLED, 'caller went away'));
  });
  const error = await result;
  assert.is(error?.code, status.CANCELLED);
  assert.is(error?.message, 'caller went away');
  await waitForEvents(() => server.events.filter((e) => e.event === 'cancelled').length > before, 3000);
});

test('a response larger than maxMessageBytes fails with RESOURCE_EXHAUSTED', async () => {
  const small = new ModelConnection(socket, { maxMessageBytes: 1 << 20 });
  try {
    const { error } = await call('Sized', String(2 << 20), 10_000, new Metadata(), small);
    assert.is(error?.code, status.RESOURCE_EXHAUSTED);
    assert.match(error!.message, /2097152 bytes is larger than the limit of 1048576/);
    assert.is((await call('Sized', String(1 << 20), 10_000, new Metadata(), small)).response?.length, 1 << 20);
  } finally {
    small.close();
  }
});

test('8 MiB messages round trip (three at once)', async () => {
  const messages = Array.from({ length: 3 }, () => randomBytes(8 << 20));
  const started = Date.now();
  const results = await Promise.all(messages.map((m) => call('Echo', m, 30_000)));
  for (const [i, r] of results.entries()) {
    assert.is(r.error, undefined, r.error?.message);
    assert.ok(r.response!.equals(messages[i]), `message ${i} came back intact`);
  }
  assert.ok(Date.now() - started < 10_000, `took ${Date.now() - started} ms`);
});

test('server killed with SIGKILL mid-call: UNAVAILABLE at once, refused while down, reconnects once it is back', async () => {
  const slow = call('Slow', '20000', 30_000);
  await waitForEvents(() => server.events.filter((e) => e.event === 'started' && e.ms === 20000).length === 1);
  const killedAt = Date.now();
  server.child.kill('SIGKILL');
  const { error } = await slow;
  const failedAfter = Date.now() - killedAt;
  assert.is(error?.code, status.UNAVAILABLE, error?.message);
  assert.ok(error!.message.includes(socket), error!.message);
  assert.ok(failedAfter < 1000, `failed ${failedAfter} ms after the kill`);
  await server.stop();

  // The socket file is left behind with nobody listening: refused, fast.
  const down = await call('Echo', 'down');
  assert.is(down.error?.code, status.UNAVAILABLE);
  assert.match(down.error!.message, new RegExp(`cannot connect to ${socket}.*ECONNREFUSED`));
  assert.ok(down.ms < 1000, `refused after ${down.ms} ms`);

  server = await startServer();
  assert.is((await call('Echo', 'back')).response?.toString(), 'back');
});

test('a draining server (GOAWAY): the call in flight still finishes, the next call connects anew', async () => {
  const slow = call('Slow', '700', 10_000);
  await waitForEvents(() => server.events.some((e) => e.event === 'started' && e.ms === 700));
  server.child.kill('SIGTERM');
  const { error, response } = await slow;
  assert.is(error, undefined, error?.message);
  assert.is(response?.toString(), 'late');
  await server.waitFor('drained');
  await server.stop();
  const gone = await call('Echo', 'gone');
  assert.is(gone.error?.code, status.UNAVAILABLE);
  assert.match(gone.error!.message, new RegExp(`cannot connect to ${socket}`));
  server = await startServer();
  assert.is((await call('Echo', 'again')).response?.toString(), 'again');
});

test('a socket that does not exist: UNAVAILABLE naming it, at once', async () => {
  const missing = join(dir, 'nobody.sock');
  const absent = new ModelConnection(missing, { maxMessageBytes: 1 << 20 });
  try {
    const { error, ms } = await call('Echo', 'x', 10_000, new Metadata(), absent);
    assert.is(error?.code, status.UNAVAILABLE);
    assert.match(error!.message, new RegExp(`cannot connect to ${missing}.*ENOENT`));
    assert.ok(ms < 1000, `failed after ${ms} ms`);
  } finally {
    absent.close();
  }
});

test('a peer that does not answer as gRPC: HTTP status, content-type, missing message or status, reset streams (the model going away: UNAVAILABLE)', async () => {
  // A raw node:http2 server on its own socket, answering each path in one wrong way.
  const rawSocket = join(dir, 'raw.sock');
  const raw = http2.createServer();
  raw.on('stream', (stream, headers) => {
    stream.on('error', () => {});
    const path = headers[':path'];
    if (path === '/503') stream.respond({ ':status': 503 }, { endStream: true });
    else if (path === '/html') {
      stream.respond({ ':status': 200, 'content-type': 'text/html' });
      stream.end('<html>');
    } else if (path === '/ok-without-message') stream.respond({ ':status': 200, 'content-type': 'application/grpc', 'grpc-status': '0' }, { endStream: true });
    else if (path === '/no-status') {
      stream.respond({ ':status': 200, 'content-type': 'application/grpc' });
      stream.end(Buffer.from([0, 0, 0, 0, 1, 42]));
    } else if (path === '/refused') stream.close(http2.constants.NGHTTP2_REFUSED_STREAM);
    else stream.close(http2.constants.NGHTTP2_INTERNAL_ERROR);
  });
  await new Promise<void>((resolve) => raw.listen(rawSocket, resolve));
  const connection = new ModelConnection(rawSocket, { maxMessageBytes: 1 << 20 });
  const outcome = async (path: string) => {
    const { error } = await new Promise<{ error?: RpcFailure }>((resolve) => connection.call(path, Buffer.from('x'), new Date(Date.now() + 5000), new Metadata(), (error) => resolve({ error })));
    return [error?.code, error?.message];
  };
  try {
    assert.equal(await outcome('/503'), [status.UNAVAILABLE, 'the model answered with HTTP status 503']);
    assert.equal(await outcome('/html'), [status.INTERNAL, "the model answered with content-type 'text/html', not application/grpc"]);
    assert.equal(await outcome('/ok-without-message'), [status.UNIMPLEMENTED, 'No message received']);
    assert.equal(await outcome('/no-status'), [status.UNAVAILABLE, "the model's response ended without a gRPC status"]);
    assert.equal(await outcome('/refused'), [status.UNAVAILABLE, 'the model refused the stream']);
    const [code, message] = await outcome('/reset');
    assert.is(code, status.UNAVAILABLE);
    assert.match(String(message), /RST_STREAM with code 2/);
  } finally {
    connection.close();
    await new Promise((resolve) => raw.close(resolve));
  }
});

test('close(): calls in flight fail with UNAVAILABLE, later calls at once, and the process is not kept alive', async () => {
  const closing = new ModelConnection(socket, { maxMessageBytes: 1 << 20 });
  const inFlight = call('Slow', '3000', 10_000, new Metadata(), closing);
  await waitForEvents(() => server.events.some((e) => e.event === 'started' && e.ms === 3000));
  closing.close();
  assert.is((await inFlight).error?.code, status.UNAVAILABLE);
  assert.is((await call('Echo', 'x', 10_000, new Metadata(), closing)).error?.code, status.UNAVAILABLE);

  // A process that made calls exits by itself, whether it closed its connection or left it idle.
  const script = join(dir, 'client.mts');
  await writeFile(script, `
import grpc from '${GRPC_JS}';
const { Metadata } = grpc;
import { ModelConnection } from ${JSON.stringify(join(REPO, 'packages/serve/src/model-connection.ts'))};
const connection = new ModelConnection(process.argv[2], { maxMessageBytes: 1 << 20 });
connection.call('/test.Raw/Echo', Buffer.from('hi'), new Date(Date.now() + 5000), new Metadata(), (error, response) => {
  process.stdout.write(error ? error.message : response!.toString());
  if (process.argv[3] === 'close') connection.close();
});
`);
  for (const mode of ['close', 'idle']) {
    const child = spawn(process.execPath, ['--import', 'tsx', script, socket, mode], { cwd: REPO, stdio: ['ignore', 'pipe', 'inherit'] });
    let out = '';
    child.stdout.on('data', (c: Buffer) => (out += c.toString()));
    const code = await new Promise<number | null>((resolve) => {
      const timer = setTimeout(() => { child.kill('SIGKILL'); resolve(null); }, 20_000);
      child.once('exit', (c) => { clearTimeout(timer); resolve(c); });
    });
    assert.is(code, 0, `the client (${mode}) exited by itself`);
    assert.is(out, 'hi');
  }
});

async function waitForEvents(check: () => boolean, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`test server events: ${JSON.stringify(server.events)}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

test.run();
