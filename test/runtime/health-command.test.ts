import { type Server, createServer as createHttpServer } from 'node:http';
import { type Server as NetServer, createServer as createNetServer } from 'node:net';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { addressFromEnv, checkHealth, probeHost } from '../../packages/runtime/src/health.ts';

/** The image health check's probe (entrypoint `health`) and the default command's address rules. */

let status = 200;
let server: Server;
let port: number;
let dir: string;

test.before(async () => {
  dir = await mkdtemp(join(tmpdir(), 'pyml-health-'));
  server = createHttpServer((req, res) => {
    res.statusCode = req.url === '/v2/health/ready' ? status : 404;
    res.end();
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  port = (server.address() as { port: number }).port;
});

test.after(async () => {
  if (server.listening) await new Promise((resolve) => server.close(resolve));
  await rm(dir, { recursive: true, force: true });
});

test('PYML_HTTP / PYML_GRPC: unset or empty → the default, off → none; wildcards are probed on loopback', () => {
  assert.is(addressFromEnv(undefined, '0.0.0.0:8000'), '0.0.0.0:8000');
  assert.is(addressFromEnv(' ', '0.0.0.0:8000'), '0.0.0.0:8000');
  assert.is(addressFromEnv('OFF', '0.0.0.0:8000'), undefined);
  assert.is(addressFromEnv('127.0.0.1:9000', '0.0.0.0:8000'), '127.0.0.1:9000');
  assert.is(probeHost('0.0.0.0'), '127.0.0.1');
  assert.is(probeHost('::'), '::1');
  assert.is(probeHost('[::1]'), '::1');
  assert.is(probeHost('10.0.0.5'), '10.0.0.5');
});

test('healthy on 200 from /v2/health/ready, unhealthy on 503 and when nothing listens', async () => {
  const env = { PYML_HTTP: `0.0.0.0:${port}` };
  status = 200;
  let r = await checkHealth({ env, socket: join(dir, 'none.sock') });
  assert.ok(r.healthy, r.detail);
  assert.match(r.detail, `http://127.0.0.1:${port}/v2/health/ready answered 200`);
  status = 503;
  r = await checkHealth({ env, socket: join(dir, 'none.sock') });
  assert.not.ok(r.healthy, r.detail);
  server.closeAllConnections();
  await new Promise((resolve) => server.close(resolve));
  r = await checkHealth({ env, socket: join(dir, 'none.sock') });
  assert.not.ok(r.healthy, r.detail);
  assert.match(r.detail, 'ECONNREFUSED');
  assert.not.ok((await checkHealth({ env: { PYML_HTTP: 'nonsense' }, socket: '' })).healthy);
});

test('REST off: the socket taking connections is all it can tell', async () => {
  const socket = join(dir, 'model.sock');
  assert.not.ok((await checkHealth({ env: { PYML_HTTP: 'off' }, socket })).healthy);
  const listening: NetServer = createNetServer((c) => c.end());
  await new Promise<void>((resolve) => listening.listen(socket, resolve));
  try {
    const r = await checkHealth({ env: { PYML_HTTP: 'off' }, socket });
    assert.ok(r.healthy, r.detail);
  } finally {
    await new Promise((resolve) => listening.close(resolve));
  }
});

test.run();
