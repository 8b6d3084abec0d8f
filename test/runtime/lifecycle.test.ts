import { existsSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { status } from '@grpc/grpc-js';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { makeRoot, startGatedServer, startServe } from './fixtures.ts';
import { callError, v2Client } from './v2-client.ts';

const request = {
  model_name: 'affine',
  inputs: [
    { name: 'x', datatype: 'FP32', shape: [1, 4], contents: { fp32_contents: [1, 2, 3, 4] } },
    { name: 'n', datatype: 'INT64', shape: [1], contents: { int64_contents: ['2'] } },
  ],
};

test('SIGTERM drains: the in-flight slow request completes, new calls are refused, exit 0', async () => {
  const fixture = makeRoot('affine');
  const started = join(fixture.root, 'active.log');
  const served = await startServe(fixture.root, { env: { PYML_TEST_DELAY_MS: '1000', PYML_TEST_ACTIVE_LOG: started } });
  const client = v2Client(served.socket);
  try {
    const inFlight = client.call('ModelInfer', request);
    // SIGTERM once the model is inside predict, however slow this machine is.
    while (!existsSync(started)) await new Promise((r) => setTimeout(r, 10));
    served.child.kill('SIGTERM');
    while (!served.stderr().includes('"msg":"draining"')) await new Promise((r) => setTimeout(r, 10));
    const late = await callError(client.call('ModelInfer', request));
    assert.ok(late.code === status.UNAVAILABLE || late.code === status.CANCELLED, `late call: ${late.code} ${late.details}`);
    const res = await inFlight;
    assert.equal(res.outputs[1].contents.int64_contents, ['6']);
    assert.is(await served.exited, 0);
  } finally {
    client.close();
    served.child.kill('SIGKILL');
    fixture.cleanup();
  }
});

test('live while init runs, ready only after it: ServerReady false and ModelInfer UNAVAILABLE until then', async () => {
  const { fixture, socket, gate, child, exited, stdout } = await startGatedServer('affine');
  try {
    const client = v2Client(socket);
    assert.equal(await client.call('ServerLive', {}), { live: true });
    assert.equal(await client.call('ServerReady', {}), { ready: false });
    assert.equal(await client.health(), { status: 'NOT_SERVING' });
    assert.is((await callError(client.call('ModelInfer', request))).code, status.UNAVAILABLE);
    assert.is(stdout(), '', 'no ready line before init is done');
    writeFileSync(gate, '');
    while (!stdout().includes('\n')) await new Promise((r) => setTimeout(r, 20));
    assert.equal(JSON.parse(stdout()).ready, true);
    assert.equal(await client.call('ServerReady', {}), { ready: true });
    client.close();
    child.kill('SIGTERM');
    assert.is(await exited, 0);
  } finally {
    child.kill('SIGKILL');
    fixture.cleanup();
  }
});

test('init failure: the error on stderr, exit code 3, no ready line', async () => {
  const fixture = makeRoot('affine');
  try {
    const error = await startServe(fixture.root, { env: { PYML_TEST_INIT_FAIL: '1' } }).then(
      () => { throw new Error('serve became ready'); },
      (e: Error) => e,
    );
    assert.match(error.message, /exited with 3 before ready/);
    assert.match(error.message, /model init failed: weights are corrupt: .*weights\/model\.bin/);
  } finally {
    fixture.cleanup();
  }
});

test('max message size is configurable: an oversized request is refused, the server lives on', async () => {
  const fixture = makeRoot('affine');
  const served = await startServe(fixture.root, { args: ['--max-message-bytes', '2048'] });
  const client = v2Client(served.socket);
  try {
    const rows = 200;
    const big = {
      model_name: 'affine',
      inputs: [{ name: 'x', datatype: 'FP32', shape: [rows, 4] }, { name: 'n', datatype: 'INT64', shape: [rows] }],
      raw_input_contents: [Buffer.alloc(rows * 16), Buffer.alloc(rows * 8)],
    };
    const error = await callError(client.call('ModelInfer', big));
    assert.is(error.code, status.RESOURCE_EXHAUSTED);
    const res = await client.call('ModelInfer', request);
    assert.equal(res.outputs[1].contents.int64_contents, ['6']);
  } finally {
    client.close();
    assert.is(await served.stop(), 0);
    fixture.cleanup();
  }
});

test('optional TCP listener serves the same protocol', async () => {
  const fixture = makeRoot('affine');
  const served = await startServe(fixture.root, { args: ['--tcp', '127.0.0.1:0'] });
  try {
    assert.match(String(served.ready.tcp), /^127\.0\.0\.1:\d+$/);
    assert.not.match(String(served.ready.tcp), /:0$/);
    const grpc = await import('@grpc/grpc-js');
    const { inferenceService } = await import('@pyml/runtime/protocol');
    const Client = grpc.makeGenericClientConstructor(inferenceService, 'GRPCInferenceService');
    const c = new Client(String(served.ready.tcp), grpc.credentials.createInsecure()) as unknown as Record<string, (r: unknown, cb: (e: Error | null, v: unknown) => void) => void> & { close(): void };
    const live = await new Promise((resolve, reject) => c.ServerLive({}, (e, v) => (e ? reject(e) : resolve(v))));
    assert.is(live, true);
    c.close();
  } finally {
    assert.is(await served.stop(), 0);
    fixture.cleanup();
  }
});

test.run();
