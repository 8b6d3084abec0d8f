import { Client, Metadata, credentials, status } from '@grpc/grpc-js';
import { decodeInferResponse, encodeInferRequest } from '@pyml/runtime/protocol';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { type Msg, type Served, type V2Client, buildImages, callError, echoRequest, http, startServe, v2Client, waitFor } from './fixtures.ts';

/**
 * Adaptive batching through `pyml serve --max-batch-size`: the service merges concurrent calls before the second hop
 * (front-batcher.ts); every caller gets exactly its rows, a bad request fails alone, deadlines stay per caller.
 */

let built: Awaited<ReturnType<typeof buildImages>>;
let served: Served;
let client: V2Client;

test.before(async () => {
  built = await buildImages(['echo']);
  served = await startServe([built.images.echo, '--max-batch-size', '32', '--max-batch-delay-ms', '20', '--max-concurrency', '128']);
  client = v2Client(served.ready.grpc);
});

test.after(async () => {
  client?.close();
  if (served) assert.is(await served.stop(), 0);
  await built?.cleanup();
});

test('96 concurrent callers with 1–3 rows each get exactly their own rows, from merged model calls', async () => {
  const requests = Array.from({ length: 96 }, (_, i) => {
    const rows = 1 + (i % 3);
    // Unique values per caller and row: value = caller * 10 + row; column 1 is the delay (0).
    return { i, rows, values: Array.from({ length: rows }, (_, r) => i * 10 + r) };
  });
  const answers = await Promise.all(requests.map(async (q) => {
    const raw = q.i % 2 === 0;
    const x = q.values.flatMap((v) => [v, 0]);
    const req: Msg = raw
      ? { model_name: 'echo', id: `c${q.i}`, inputs: [{ name: 'x', datatype: 'FP32', shape: [q.rows, 2] }], raw_input_contents: [Buffer.from(Float32Array.from(x).buffer)] }
      : { model_name: 'echo', id: `c${q.i}`, inputs: [{ name: 'x', datatype: 'FP32', shape: [q.rows, 2], contents: { fp32_contents: x } }] };
    const res = await client.call('ModelInfer', req);
    const y = raw ? Array.from(new Float32Array(new Uint8Array(res.raw_output_contents[0]).buffer)) : res.outputs[0].contents.fp32_contents;
    const rows = raw ? Array.from(new BigInt64Array(new Uint8Array(res.raw_output_contents[1]).buffer), Number) : res.outputs[1].contents.int64_contents.map(Number);
    return { q, res, y, x, rows };
  }));
  let merged = 0;
  for (const a of answers) {
    assert.is(a.res.id, `c${a.q.i}`);
    assert.equal(a.res.outputs[0].shape, [String(a.q.rows), '2']);
    assert.equal(a.y, a.x, `caller ${a.q.i} got its own rows`);
    assert.is(a.rows.length, a.q.rows);
    if (a.rows[0] > a.q.rows) merged++;
  }
  // Most callers were answered by a model call that held other callers' rows too.
  assert.ok(merged > 48, `only ${merged} of 96 answers came from merged calls`);
  // The batch-size histogram saw every row once, in fewer calls than there were callers.
  const metrics = (await http(served.ready.http, '/metrics')).text;
  const rows = Number(/pyml_batch_rows_sum\{model="echo",version="0.1.0"\} (\d+)/.exec(metrics)?.[1]);
  const calls = Number(/pyml_batch_rows_count\{model="echo",version="0.1.0"\} (\d+)/.exec(metrics)?.[1]);
  assert.is(rows, requests.reduce((n, q) => n + q.rows, 0), metrics);
  assert.ok(calls > 0 && calls < 96, `${calls} merged calls for 96 callers`);
});

test('HTTP callers are batched the same way', async () => {
  const answers = await Promise.all(Array.from({ length: 24 }, async (_, i) => {
    const res = await http(served.ready.http, '/v2/models/echo/infer', { inputs: [{ name: 'x', datatype: 'FP32', shape: [1, 2], data: [i + 0.5, 0] }] });
    return { i, res };
  }));
  let merged = 0;
  for (const { i, res } of answers) {
    assert.is(res.status, 200, res.text);
    assert.equal(res.body.outputs[0].data, [i + 0.5, 0]);
    if (res.body.outputs[1].data[0] > 1) merged++;
  }
  assert.ok(merged > 0, 'some HTTP calls were merged');
});

test('the model process runs merged calls as they come: batching happens in the service, not twice', () => {
  assert.match(served.stderr(), /"msg":"serving","model":"echo"[^\n]*"batching":false/);
});

test('a bad request among concurrent good ones fails alone, with the model\'s own error and pyml-tensor trailer', async () => {
  const good = Array.from({ length: 12 }, (_, i) => client.call('ModelInfer', echoRequest([[i, 30]])));
  const bad = callError(client.call('ModelInfer', { model_name: 'echo', inputs: [{ name: 'x', datatype: 'FP32', shape: [1, 3], contents: { fp32_contents: [1, 2, 3] } }] }));
  const unknown = callError(client.call('ModelInfer', { model_name: 'echo', inputs: [{ name: 'z', datatype: 'FP32', shape: [1, 2], contents: { fp32_contents: [1, 2] } }] }));
  const answers = await Promise.all(good);
  answers.forEach((a, i) => assert.equal(a.outputs[0].contents.fp32_contents, [i, 30]));
  assert.ok(answers.some((a) => Number(a.outputs[1].contents.int64_contents[0]) > 1), 'the good calls were merged');
  const [shapeError, nameError] = await Promise.all([bad, unknown]);
  assert.is(shapeError.code, status.INVALID_ARGUMENT);
  assert.match(shapeError.details, /input 'x': expected shape \[-1, 2\], got \[1, 3\]/);
  assert.equal(shapeError.metadata.get('pyml-tensor'), ['x']);
  assert.is(nameError.code, status.INVALID_ARGUMENT);
  assert.match(nameError.details, /unknown input 'z'/);
});

test('a caller\'s deadline is its own: it fails at its deadline while its batch runs on for the others', async () => {
  const slow = client.call('ModelInfer', echoRequest([[1, 600]]));
  const hurried = callError(client.call('ModelInfer', echoRequest([[2, 0]]), 200));
  const start = Date.now();
  const error = await hurried;
  assert.is(error.code, status.DEADLINE_EXCEEDED, error.details);
  assert.ok(Date.now() - start < 550, 'failed at its own deadline');
  assert.equal((await slow).outputs[0].contents.fp32_contents, [1, 600]);
});

test('a batched caller that cancels stops counting at once; the others in its batch are answered', async () => {
  const others = Array.from({ length: 3 }, (_, i) => client.call('ModelInfer', echoRequest([[i, 600]])));
  const raw = new Client(served.ready.grpc, credentials.createInsecure());
  const identity = (b: Buffer) => b;
  const call = raw.makeUnaryRequest('/inference.GRPCInferenceService/ModelInfer', identity, identity, encodeInferRequest({ modelName: 'echo', raw: true, inputs: [{ name: 'x', tensor: { dtype: 'FP32', shape: [1, 2], data: Float32Array.of(9, 600) } }] }), new Metadata(), {}, () => {});
  // All four in flight (waited for as a condition: a loaded machine may take more than a fixed 150 ms to get them there).
  await waitFor('four echo calls in flight', async () => /pyml_model_in_flight\{model="echo",version="0.1.0"\} 4/.test((await http(served.ready.http, '/metrics')).text), 5000);
  call.cancel();
  await new Promise((r) => setTimeout(r, 100));
  assert.match((await http(served.ready.http, '/metrics')).text, /pyml_model_in_flight\{model="echo",version="0.1.0"\} 3/, 'the cancelled caller no longer counts');
  (await Promise.all(others)).forEach((a, i) => assert.equal(a.outputs[0].contents.fp32_contents, [i, 600]));
  raw.close();
});

test('answers are byte for byte what the model sends unbatched (raw and typed, an outputs filter, ids, raw_output)', async () => {
  const unbatched = await startServe([built.images.echo, '--max-batch-size', '1']);
  const identity = (b: Buffer) => b;
  const raw = (address: string) => {
    const c = new Client(address, credentials.createInsecure());
    return { close: () => c.close(), call: (bytes: Buffer) => new Promise<Buffer>((resolve, reject) => c.makeUnaryRequest('/inference.GRPCInferenceService/ModelInfer', identity, identity, bytes, new Metadata(), {}, (e, r) => (e ? reject(e) : resolve(r!)))) };
  };
  const batchedClient = raw(served.ready.grpc);
  const plainClient = raw(unbatched.ready.grpc);
  try {
    const requests = Array.from({ length: 16 }, (_, i) => encodeInferRequest({
      modelName: 'echo', id: `req-${i}`, raw: i % 2 === 0, outputs: [{ name: 'y' }],
      ...(i % 4 === 1 ? { parameters: { raw_output: true } } : {}),
      inputs: [{ name: 'x', tensor: { dtype: 'FP32', shape: [1 + (i % 3), 2], data: Float32Array.from({ length: 2 * (1 + (i % 3)) }, (_, k) => i * 100 + k + 0.25) } }],
    }));
    const batched = await Promise.all(requests.map((r) => batchedClient.call(r)));
    const plain = await Promise.all(requests.map((r) => plainClient.call(r)));
    batched.forEach((bytes, i) => assert.ok(bytes.equals(plain[i]), `request ${i}: batched answer differs from the model's own`));
    assert.is(decodeInferResponse(batched[3]).id, 'req-3');
    // The same requests with every output: the rows output shows they were merged.
    const all = await Promise.all(requests.map((r, i) => batchedClient.call(encodeInferRequest({ modelName: 'echo', raw: true, inputs: [{ name: 'x', tensor: { dtype: 'FP32', shape: [1, 2], data: Float32Array.of(i, 0) } }] }))));
    assert.ok(all.some((bytes) => Number((decodeInferResponse(bytes).outputs[1].tensor.data as BigInt64Array)[0]) > 1), 'merged');
  } finally {
    batchedClient.close();
    plainClient.close();
    assert.is(await unbatched.stop(), 0);
  }
});

test('kill -9 of the model under batched load: every caller fails fast with UNAVAILABLE, none hangs; then it serves again', async () => {
  const pid = served.ready.models.find((m) => m.name === 'echo')!.pid!;
  const calls = Array.from({ length: 20 }, (_, i) => client.call('ModelInfer', echoRequest([[i, 5000]]), 30_000).then(() => 'ok', (e: { code: number; details: string }) => `${e.code}:${e.details}`));
  await new Promise((r) => setTimeout(r, 300));
  const killedAt = Date.now();
  process.kill(pid, 'SIGKILL');
  const results = await Promise.all(calls);
  assert.ok(Date.now() - killedAt < 2000, `callers failed ${Date.now() - killedAt} ms after the kill`);
  for (const r of results) assert.match(r, new RegExp(`^${status.UNAVAILABLE}:model 'echo' `));
  let answer: Msg | undefined;
  for (let tries = 0; !answer && tries < 100; tries++) {
    answer = await client.call('ModelInfer', echoRequest([[7, 0]])).catch(() => new Promise<undefined>((r) => setTimeout(r, 150)));
  }
  assert.equal(answer?.outputs[0].contents.fp32_contents, [7, 0]);
});

test('--max-concurrency counts callers, not merged calls; the in-flight gauge too', async () => {
  const limited = await startServe([built.images.echo, '--max-batch-size', '8', '--max-concurrency', '4']);
  const limitedClient = v2Client(limited.ready.grpc);
  try {
    const calls = Array.from({ length: 7 }, (_, i) => limitedClient.call('ModelInfer', echoRequest([[i, 400]])).then(() => 'ok', (e: { code: number }) => e.code));
    await new Promise((r) => setTimeout(r, 150));
    assert.match((await http(limited.ready.http, '/metrics')).text, /pyml_model_in_flight\{model="echo",version="0.1.0"\} 4/);
    const results = await Promise.all(calls);
    assert.is(results.filter((r) => r === 'ok').length, 4, String(results));
    assert.is(results.filter((r) => r === status.RESOURCE_EXHAUSTED).length, 3, String(results));
  } finally {
    limitedClient.close();
    assert.is(await limited.stop(), 0);
  }
});

test.run();
