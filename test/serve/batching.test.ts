import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { type Msg, type Served, type V2Client, buildImages, http, startServe, v2Client } from './fixtures.ts';

/** Adaptive batching through `pyml serve --max-batch-size`: merged calls, and every caller gets exactly its rows. */

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

test.run();
