import { spawn } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { join } from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { ENTRYPOINT, REPO, makeRoot, startServe } from './fixtures.ts';
import { type Msg, v2Client } from './v2-client.ts';

/**
 * The entrypoint's REST server (`serve --http`) on the runtime's fixture models: it answers while the model starts,
 * maps the model's failures as gRPC does (400 when the model blames the request, 500 for a model bug), and its
 * requests share the gRPC server's predictor: batched together with gRPC calls, and under one concurrency limit.
 */

async function call(base: string, path: string, body?: unknown): Promise<{ status: number; body: Msg }> {
  const res = await fetch(`http://${base}${path}`, body === undefined ? {} : { method: 'POST', body: JSON.stringify(body) });
  return { status: res.status, body: await res.json() };
}

const affine = (x: number[], n: number[]) => ({
  inputs: [{ name: 'x', datatype: 'FP32', shape: [n.length, 4], data: x }, { name: 'n', datatype: 'INT64', shape: [n.length], data: n }],
});
const expectedY = (xs: number[]) => Array.from(Float32Array.from(xs, (v) => Math.fround(Math.fround(v) * 2 + 0.1)));

/** The bound HTTP address from the ready line. */
const httpOf = (served: { ready: object }): string => (served.ready as { http: string }).http;

/** A port free a moment ago: the ready line comes after init, and this test needs the port before it. */
function freePort(): Promise<number> {
  return new Promise((resolve) => {
    const server = createServer().listen(0, '127.0.0.1', () => {
      const { port } = server.address() as { port: number };
      server.close(() => resolve(port));
    });
  });
}

test('live while the model starts: not ready, model routes 503, then ready once init is done', async () => {
  const fixture = makeRoot('affine');
  const gate = join(fixture.root, 'init.gate');
  const base = `127.0.0.1:${await freePort()}`;
  const child = spawn(process.execPath, ['--import', 'tsx', ENTRYPOINT, 'serve', '--socket', join(fixture.root, 'm.sock'), '--http', base], {
    cwd: REPO, env: { ...process.env, PYML_ROOT: fixture.root, PYML_TEST_INIT_GATE: gate }, stdio: ['ignore', 'pipe', 'ignore'],
  });
  const exited = new Promise<number | null>((r) => child.once('exit', r));
  let out = '';
  child.stdout!.on('data', (c: Buffer) => { out += c.toString(); });
  try {
    let live: { status: number; body: Msg } | undefined;
    for (let i = 0; i < 200 && !live; i++) {
      live = await call(base, '/v2/health/live').catch(() => undefined);
      if (!live) await new Promise((r) => setTimeout(r, 50));
    }
    assert.equal(live, { status: 200, body: { live: true } });
    assert.equal(await call(base, '/v2/health/ready'), { status: 400, body: { ready: false } });
    assert.equal(await call(base, '/v2/models/affine/ready'), { status: 400, body: { name: 'affine', ready: false } });
    assert.equal(await call(base, '/v2/models/affine'), { status: 503, body: { error: 'model is still initialising' } });
    assert.equal(await call(base, '/v2/models/affine/infer', affine([1, 2, 3, 4], [1])), { status: 503, body: { error: 'model is still initialising' } });
    assert.is(out, '', 'no ready line before init is done');
    writeFileSync(gate, '');
    for (let i = 0; i < 200 && !out.includes('\n'); i++) await new Promise((r) => setTimeout(r, 25));
    assert.is(JSON.parse(out).http, base);
    assert.equal(await call(base, '/v2/health/ready'), { status: 200, body: { ready: true } });
    const res = await call(base, '/v2/models/affine/infer', affine([1, 2, 3, 4], [5]));
    assert.equal(res.body.outputs[0].data, expectedY([1, 2, 3, 4]));
  } finally {
    writeFileSync(gate, '');
    child.kill('SIGTERM');
    assert.is(await exited, 0);
    fixture.cleanup();
  }
});

test('model failures: a bug is 500 with its message, a model that blames the request is 400; the server keeps serving', async () => {
  const fixture = makeRoot('affine');
  const served = await startServe(fixture.root, { args: ['--http', '127.0.0.1:0'] });
  try {
    const base = httpOf(served);
    const x = [1, 2, 3, 4];
    const wrongDtype = await call(base, '/v2/models/affine/infer', affine(x, [-999]));
    assert.is(wrongDtype.status, 500);
    assert.match(wrongDtype.body.error, /model output 'y': expected dtype FP32, got FP64/);
    const thrown = await call(base, '/v2/models/affine/infer', affine(x, [-666]));
    assert.is(thrown.status, 500);
    assert.match(thrown.body.error, /model exploded/);
    const blamed = await call(base, '/v2/models/affine/infer', affine(x, [-777]));
    assert.is(blamed.status, 400);
    assert.match(blamed.body.error, /n = -777 is not a valid count/);
    // Exact 64-bit integers both ways, beyond a double's 2^53.
    const big = await fetch(`http://${base}/v2/models/affine/infer`, { method: 'POST', body: '{"inputs":[{"name":"x","datatype":"FP32","shape":[1,4],"data":[1,2,3,4]},{"name":"n","datatype":"INT64","shape":[1],"data":["-9007199254740993"]}]}' });
    assert.match(await big.text(), /"name":"m","datatype":"INT64","shape":\[1\],"data":\[-27021597764222979\]/);
    assert.equal((await call(base, '/v2/models/affine/infer', affine(x, [1]))).body.outputs[1].data, [3]);
    assert.match(served.stderr(), /prediction failed/);
  } finally {
    assert.is(await served.stop(), 0);
    fixture.cleanup();
  }
});

test('HTTP and gRPC requests are batched together by the one predictor, each caller getting its own rows', async () => {
  const fixture = makeRoot('affine', { maxBatchSize: 32, maxBatchDelayMs: 20 });
  const log = join(fixture.root, 'calls.log');
  const served = await startServe(fixture.root, { args: ['--http', '127.0.0.1:0'], env: { PYML_TEST_CALL_LOG: log } });
  const client = v2Client(served.socket);
  try {
    const base = httpOf(served);
    const rows = (i: number) => Array.from({ length: 4 * ((i % 3) + 1) }, (_, j) => i * 10 + j);
    const answers = await Promise.all(Array.from({ length: 48 }, async (_, i) => {
      const x = rows(i);
      const n = Array.from({ length: x.length / 4 }, (_, r) => i * 100 + r);
      if (i % 2) {
        const res = await client.call('ModelInfer', { model_name: 'affine', inputs: [
          { name: 'x', datatype: 'FP32', shape: [n.length, 4], contents: { fp32_contents: x } },
          { name: 'n', datatype: 'INT64', shape: [n.length], contents: { int64_contents: n.map(String) } },
        ] });
        return { x, n, y: res.outputs[0].contents.fp32_contents as number[], m: (res.outputs[1].contents.int64_contents as string[]).map(Number) };
      }
      const res = await call(base, '/v2/models/affine/infer', affine(x, n));
      return { x, n, y: res.body.outputs[0].data as number[], m: res.body.outputs[1].data as number[] };
    }));
    for (const { x, n, y, m } of answers) {
      assert.equal(y, expectedY(x));
      assert.equal(m, n.map((v) => v * 3));
    }
    const calls = readFileSync(log, 'utf8').trim().split('\n').map(Number);
    assert.is(calls.reduce((a, b) => a + b, 0), answers.reduce((s, a) => s + a.n.length, 0));
    assert.ok(calls.length < 48, `expected merged calls, got ${calls.length} model calls for 48 requests`);
  } finally {
    client.close();
    assert.is(await served.stop(), 0);
    fixture.cleanup();
  }
});

test('one concurrency limit (serving.maxConcurrency) over HTTP and gRPC requests', async () => {
  const fixture = makeRoot('affine', { maxConcurrency: 2 });
  const log = join(fixture.root, 'active.log');
  const served = await startServe(fixture.root, { args: ['--http', '127.0.0.1:0'], env: { PYML_TEST_ACTIVE_LOG: log, PYML_TEST_DELAY_MS: '30' } });
  const client = v2Client(served.socket);
  try {
    const base = httpOf(served);
    const statuses = await Promise.all(Array.from({ length: 12 }, (_, i) => (i % 2
      ? client.call('ModelInfer', { model_name: 'affine', inputs: [
        { name: 'x', datatype: 'FP32', shape: [1, 4], contents: { fp32_contents: [1, 2, 3, 4] } },
        { name: 'n', datatype: 'INT64', shape: [1], contents: { int64_contents: ['1'] } },
      ] }).then(() => 200)
      : call(base, '/v2/models/affine/infer', affine([1, 2, 3, 4], [1])).then((r) => r.status))));
    assert.equal(statuses, Array(12).fill(200));
    const active = readFileSync(log, 'utf8').trim().split('\n').map(Number);
    assert.is(active.length, 12);
    assert.is(Math.max(...active), 2, `at most 2 model calls at once, saw ${Math.max(...active)}`);
  } finally {
    client.close();
    assert.is(await served.stop(), 0);
    fixture.cleanup();
  }
});

test.run();
