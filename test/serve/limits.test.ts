import { status } from '@grpc/grpc-js';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { type Served, type V2Client, buildImages, callError, echoRequest, http, startServe, v2Client } from './fixtures.ts';

/** Per-request deadline, per-model concurrency limit and maximum message size, on a real `pyml serve`. */

let built: Awaited<ReturnType<typeof buildImages>>;
let served: Served;
let client: V2Client;

test.before(async () => {
  built = await buildImages(['echo']);
  served = await startServe([built.images.echo, '--deadline-ms', '700', '--max-concurrency', '3', '--max-message-bytes', '8192']);
  client = v2Client(served.ready.grpc);
});

test.after(async () => {
  client?.close();
  if (served) assert.is(await served.stop(), 0);
  await built?.cleanup();
});

async function timed<T>(p: Promise<T>): Promise<[T, number]> {
  const start = Date.now();
  const value = await p;
  return [value, Date.now() - start];
}

test('deadline: the service caps a slow call at --deadline-ms; a shorter caller deadline wins', async () => {
  const [capped, ms] = await timed(callError(client.call('ModelInfer', echoRequest([[1, 5000]]), 30_000)));
  assert.is(capped.code, status.DEADLINE_EXCEEDED, capped.details);
  assert.ok(ms >= 650 && ms < 2500, `capped after ${ms} ms`);
  const [own, ms2] = await timed(callError(client.call('ModelInfer', echoRequest([[1, 5000]]), 200)));
  assert.is(own.code, status.DEADLINE_EXCEEDED);
  assert.ok(ms2 < 650, `caller deadline hit after ${ms2} ms`);
  const [httpRes, ms3] = await timed(http(served.ready.http, '/v2/models/echo/infer', { inputs: [{ name: 'x', datatype: 'FP32', shape: [1, 2], data: [1, 5000] }] }));
  assert.is(httpRes.status, 504, httpRes.text);
  assert.ok(ms3 < 2500);
  // A call within the deadline is fine.
  assert.equal((await client.call('ModelInfer', echoRequest([[2, 100]]))).outputs[0].contents.fp32_contents, [2, 100]);
});

test('concurrency: beyond --max-concurrency in flight, calls fail fast with RESOURCE_EXHAUSTED', async () => {
  const calls = Array.from({ length: 6 }, (_, i) => client.call('ModelInfer', echoRequest([[i, 400]])).then(
    () => 'ok', (e: { code: number; details: string }) => `${e.code}:${e.details}`));
  const results = await Promise.all(calls);
  assert.is(results.filter((r) => r === 'ok').length, 3, results.join('\n'));
  const rejected = results.filter((r) => r !== 'ok');
  assert.is(rejected.length, 3);
  for (const r of rejected) assert.match(r, new RegExp(`^${status.RESOURCE_EXHAUSTED}:model 'echo' has 3 requests in flight, its limit \\(--max-concurrency 3\\)`));
  // The limit frees up as calls finish.
  assert.is((await Promise.all([0, 1, 2].map((i) => client.call('ModelInfer', echoRequest([[i, 0]]))))).length, 3);
  const metrics = (await http(served.ready.http, '/metrics')).text;
  assert.match(metrics, /pyml_request_errors_total\{model="echo",version="0.1.0",protocol="grpc",code="RESOURCE_EXHAUSTED"\} 3/);
});

test('message size: a request over --max-message-bytes is refused (gRPC RESOURCE_EXHAUSTED, HTTP 413); the service serves on', async () => {
  const rows = Array.from({ length: 2000 }, (_, i): [number, number] => [i, 0]);
  const big = await callError(client.call('ModelInfer', echoRequest(rows)));
  assert.is(big.code, status.RESOURCE_EXHAUSTED, big.details);
  const res = await http(served.ready.http, '/v2/models/echo/infer', { inputs: [{ name: 'x', datatype: 'FP32', shape: [2000, 2], data: rows.flat() }] });
  assert.is(res.status, 413);
  assert.match(res.body.error, /over the limit of 8192 bytes/);
  // An answer too big for the limit is refused as well, not truncated (100 rows in, fine; the reply is small too).
  const ok = await client.call('ModelInfer', echoRequest(rows.slice(0, 100)));
  assert.is(ok.outputs[0].contents.fp32_contents.length, 200);
});

test.run();
