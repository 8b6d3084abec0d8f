import { status } from '@grpc/grpc-js';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { type Served, type V2Client, buildImages, callError, echoRequest, http, startServe, v2Client } from './fixtures.ts';

/** One `pyml serve` of three images (iris from a tarball, echo, and broken whose init throws), over gRPC and HTTP. */

let built: Awaited<ReturnType<typeof buildImages>>;
let served: Served;
let client: V2Client;

test.before(async () => {
  built = await buildImages(['iris', 'echo', 'broken']);
  served = await startServe([`${built.images.iris}.tar`, built.images.echo, built.images.broken]);
  client = v2Client(served.ready.grpc);
});

test.after(async () => {
  client?.close();
  if (served) assert.is(await served.stop(), 0, 'serve exits 0 on SIGTERM');
  await built?.cleanup();
});

const FLOWERS = [5.1, 3.5, 1.4, 0.2, 6.7, 3.0, 5.2, 2.3];

test('the ready line lists each model with its state; the broken one carries its init error', () => {
  const byName = Object.fromEntries(served.ready.models.map((m) => [m.name, m]));
  assert.is(byName.iris.state, 'ready');
  assert.is(byName.echo.state, 'ready');
  assert.ok(byName.iris.pid! > 0);
  assert.is(byName.broken.state, 'failed');
  assert.match(byName.broken.error!, /weights are corrupt: checksum mismatch in layer 3/);
});

test('gRPC: live; server not ready while a model is down, models ready one by one; health', async () => {
  assert.equal(await client.call('ServerLive', {}), { live: true });
  assert.equal(await client.call('ServerReady', {}), { ready: false });
  assert.equal(await client.call('ModelReady', { name: 'iris', version: '' }), { ready: true });
  assert.equal(await client.call('ModelReady', { name: 'echo', version: '' }), { ready: true });
  assert.equal(await client.call('ModelReady', { name: 'broken', version: '' }), { ready: false });
  assert.equal(await client.call('ModelReady', { name: 'ghost', version: '' }), { ready: false });
  assert.equal(await client.health('iris'), { status: 'SERVING' });
  assert.equal(await client.health('broken'), { status: 'NOT_SERVING' });
  assert.is((await callError(client.health('ghost'))).code, status.NOT_FOUND);
  const meta = await client.call('ServerMetadata', {});
  assert.is(meta.name, 'pyml-serve');
});

test('gRPC: ModelMetadata comes from the model; the broken model answers UNAVAILABLE with its init error', async () => {
  const meta = await client.call('ModelMetadata', { name: 'iris', version: '' });
  assert.equal(meta, {
    name: 'iris', versions: ['1.0.0'], platform: 'pyml-tensor',
    inputs: [{ name: 'input', datatype: 'FP32', shape: ['-1', '4'] }],
    outputs: [{ name: 'probabilities', datatype: 'FP32', shape: ['-1', '3'] }, { name: 'label', datatype: 'INT64', shape: ['-1'] }],
  });
  const error = await callError(client.call('ModelMetadata', { name: 'broken', version: '' }));
  assert.is(error.code, status.UNAVAILABLE);
  assert.match(error.details, /model 'broken' failed to start: .*weights are corrupt/);
  assert.match(served.stderr(), /"msg":"model failed to start".*weights are corrupt/);
  assert.is((await callError(client.call('ModelMetadata', { name: 'ghost', version: '' }))).code, status.NOT_FOUND);
});

test('gRPC: ModelInfer with typed and raw contents is routed by name', async () => {
  const typed = await client.call('ModelInfer', { model_name: 'iris', id: 'a1', inputs: [{ name: 'input', datatype: 'FP32', shape: [2, 4], contents: { fp32_contents: FLOWERS } }] });
  assert.is(typed.model_name, 'iris');
  assert.is(typed.id, 'a1');
  assert.equal(typed.outputs.map((o: { name: string }) => o.name), ['probabilities', 'label']);
  assert.equal(typed.outputs[1].contents.int64_contents, ['0', '2']);
  const raw = await client.call('ModelInfer', {
    model_name: 'iris', inputs: [{ name: 'input', datatype: 'FP32', shape: [2, 4] }], raw_input_contents: [Buffer.from(Float32Array.from(FLOWERS).buffer)],
  });
  const probs = new Float32Array(new Uint8Array(raw.raw_output_contents[0]).buffer);
  assert.equal(Array.from(probs), typed.outputs[0].contents.fp32_contents);
  const echo = await client.call('ModelInfer', echoRequest([[1.5, 0], [-2, 0]]));
  assert.equal(echo.outputs[0].contents.fp32_contents, [1.5, 0, -2, 0]);
});

test('gRPC: bad requests are INVALID_ARGUMENT naming the tensor; unknown and broken models are NOT_FOUND / UNAVAILABLE', async () => {
  const shape = await callError(client.call('ModelInfer', { model_name: 'iris', inputs: [{ name: 'input', datatype: 'FP32', shape: [1, 3], contents: { fp32_contents: [1, 2, 3] } }] }));
  assert.is(shape.code, status.INVALID_ARGUMENT);
  assert.match(shape.details, /input 'input': expected shape \[-1, 4\], got \[1, 3\]/);
  const dtype = await callError(client.call('ModelInfer', { model_name: 'iris', inputs: [{ name: 'input', datatype: 'INT32', shape: [1, 4], contents: { int_contents: [1, 2, 3, 4] } }] }));
  assert.is(dtype.code, status.INVALID_ARGUMENT);
  assert.match(dtype.details, /input 'input': expected dtype FP32, got INT32/);
  const missing = await callError(client.call('ModelInfer', { model_name: 'iris', inputs: [{ name: 'petals', datatype: 'FP32', shape: [1, 4], contents: { fp32_contents: [1, 2, 3, 4] } }] }));
  assert.is(missing.code, status.INVALID_ARGUMENT);
  assert.match(missing.details, /'petals'|'input'/);
  const ghost = await callError(client.call('ModelInfer', { model_name: 'ghost', inputs: [] }));
  assert.is(ghost.code, status.NOT_FOUND);
  assert.match(ghost.details, /model 'ghost' is not served here \(models: iris, echo, broken\)/);
  const broken = await callError(client.call('ModelInfer', echoRequest([[1, 0]], 'broken')));
  assert.is(broken.code, status.UNAVAILABLE);
  assert.match(broken.details, /weights are corrupt/);
  // The service is still up and serving after all that.
  assert.equal((await client.call('ModelInfer', echoRequest([[7, 0]]))).outputs[0].contents.fp32_contents, [7, 0]);
});

test('HTTP: health, model metadata, ready, infer', async () => {
  const base = served.ready.http;
  assert.equal((await http(base, '/v2/health/live')).body, { live: true });
  const ready = await http(base, '/v2/health/ready');
  assert.equal([ready.status, ready.body], [400, { ready: false }]);
  assert.equal((await http(base, '/v2/models/iris/ready')).body, { name: 'iris', ready: true });
  assert.is((await http(base, '/v2/models/broken/ready')).status, 400);
  const meta = await http(base, '/v2/models/iris');
  assert.equal(meta.body.inputs, [{ name: 'input', datatype: 'FP32', shape: [-1, 4] }]);
  const brokenMeta = await http(base, '/v2/models/broken');
  assert.is(brokenMeta.status, 503);
  assert.match(brokenMeta.body.error, /failed to start: .*weights are corrupt/);
  const res = await http(base, '/v2/models/iris/infer', { id: 'h1', inputs: [{ name: 'input', datatype: 'FP32', shape: [2, 4], data: FLOWERS }] });
  assert.is(res.status, 200, res.text);
  assert.is(res.body.model_name, 'iris');
  assert.is(res.body.id, 'h1');
  assert.equal(res.body.outputs[1], { name: 'label', datatype: 'INT64', shape: [2], data: [0, 2] });
  // Same numbers as gRPC.
  const g = await client.call('ModelInfer', { model_name: 'iris', inputs: [{ name: 'input', datatype: 'FP32', shape: [2, 4], contents: { fp32_contents: FLOWERS } }] });
  assert.equal(res.body.outputs[0].data, g.outputs[0].contents.fp32_contents);
  const versioned = await http(base, '/v2/models/iris/versions/1.0.0/infer', { inputs: [{ name: 'input', datatype: 'FP32', shape: [1, 4], data: FLOWERS.slice(0, 4) }] });
  assert.is(versioned.status, 200, versioned.text);
  // Versioned paths: the served version is ready and described; another version is neither, and cannot infer.
  assert.equal((await http(base, '/v2/models/iris/versions/1.0.0/ready')).body, { name: 'iris', ready: true });
  const otherReady = await http(base, '/v2/models/iris/versions/2.0.0/ready');
  assert.equal([otherReady.status, otherReady.body], [400, { name: 'iris', ready: false }]);
  assert.equal((await http(base, '/v2/models/iris/versions/1.0.0')).body.versions, ['1.0.0']);
  const otherMeta = await http(base, '/v2/models/iris/versions/2.0.0');
  assert.is(otherMeta.status, 404, otherMeta.text);
  assert.match(otherMeta.body.error, /version '2\.0\.0'/);
  const otherInfer = await http(base, '/v2/models/iris/versions/2.0.0/infer', { inputs: [{ name: 'input', datatype: 'FP32', shape: [1, 4], data: FLOWERS.slice(0, 4) }] });
  assert.is(otherInfer.status, 404, otherInfer.text);
});

test('HTTP: bad requests are 400 naming the tensor; unknown model 404; not JSON 400; down model 503', async () => {
  const base = served.ready.http;
  const bad = await http(base, '/v2/models/iris/infer', { inputs: [{ name: 'input', datatype: 'FP32', shape: [1, 3], data: [1, 2, 3] }] });
  assert.is(bad.status, 400);
  assert.match(bad.body.error, /input 'input': expected shape \[-1, 4\]/);
  const count = await http(base, '/v2/models/iris/infer', { inputs: [{ name: 'input', datatype: 'FP32', shape: [2, 4], data: [1, 2, 3] }] });
  assert.is(count.status, 400);
  assert.match(count.body.error, /input 'input': shape \[2, 4\] needs 8 elements/);
  const notJson = await http(base, '/v2/models/iris/infer', 'this is not json');
  assert.is(notJson.status, 400);
  assert.match(notJson.body.error, /not JSON/);
  assert.is((await http(base, '/v2/models/ghost/infer', { inputs: [] })).status, 404);
  assert.is((await http(base, '/v2/models/broken/infer', { inputs: [{ name: 'x', datatype: 'FP32', shape: [1, 2], data: [1, 0] }] })).status, 503);
  assert.is((await http(base, '/v2/nothing')).status, 404);
});

test('metrics: request, error and latency counters move per model and protocol', async () => {
  const base = served.ready.http;
  const value = (text: string, re: RegExp) => Number(re.exec(text)?.[1] ?? 0);
  const before = (await http(base, '/metrics')).text;
  await client.call('ModelInfer', echoRequest([[1, 0]]));
  await callError(client.call('ModelInfer', { model_name: 'echo', inputs: [{ name: 'x', datatype: 'FP32', shape: [1, 3], contents: { fp32_contents: [1, 2, 3] } }] }));
  await http(base, '/v2/models/echo/infer', { inputs: [{ name: 'x', datatype: 'FP32', shape: [1, 2], data: [1, 0] }] });
  const after = (await http(base, '/metrics')).text;
  const reqG = /pyml_requests_total\{model="echo",version="0.1.0",protocol="grpc"\} (\d+)/;
  const reqH = /pyml_requests_total\{model="echo",version="0.1.0",protocol="http"\} (\d+)/;
  const errG = /pyml_request_errors_total\{model="echo",version="0.1.0",protocol="grpc",code="INVALID_ARGUMENT"\} (\d+)/;
  const latG = /pyml_request_duration_seconds_count\{model="echo",version="0.1.0",protocol="grpc"\} (\d+)/;
  assert.is(value(after, reqG) - value(before, reqG), 2);
  assert.is(value(after, reqH) - value(before, reqH), 1);
  assert.is(value(after, errG) - value(before, errG), 1);
  assert.is(value(after, latG) - value(before, latG), 2);
  assert.match(after, /pyml_model_ready\{model="iris",version="1.0.0"\} 1/);
  assert.match(after, /pyml_model_ready\{model="broken",version="0.1.0"\} 0/);
});

test.run();
