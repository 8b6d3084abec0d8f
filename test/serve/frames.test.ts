import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { Client, Metadata, credentials, status } from '@grpc/grpc-js';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { encodeInferRequest } from '@pyml/runtime/protocol';
import { type Served, type V2Client, buildImages, callError, echoRequest, http, startServe, v2Client, waitFor } from './fixtures.ts';

/**
 * pyml serve's hop to its model processes is the framed protocol (@pyml/runtime's oip/frames.ts): REST bodies and
 * gRPC messages go to the model as the client sent them, errors come back with their status, a model killed
 * mid-call fails its calls at once and comes back, and a caller who leaves frees its slot at once.
 */

let built: Awaited<ReturnType<typeof buildImages>>;
let served: Served;
let client: V2Client;

test.before(async () => {
  built = await buildImages(['iris', 'echo']);
  served = await startServe([built.images.iris, built.images.echo]);
  client = v2Client(served.ready.grpc);
});

test.after(async () => {
  client?.close();
  if (served) assert.is(await served.stop(), 0);
  await built?.cleanup();
});

const ROW = [5.1, 3.5, 1.4, 0.2];
const irisJson = (extra: Record<string, unknown> = {}) => ({ inputs: [{ name: 'input', datatype: 'FP32', shape: [1, 4], data: ROW }], ...extra });
const inFlight = async (model: string) => Number(new RegExp(`pyml_model_in_flight\\{model="${model}"(?:,version="[^"]*")?\\} (\\d+)`).exec((await http(served.ready.http, '/metrics')).text)?.[1]);

test('each model process serves a frame socket beside its gRPC socket, and the front uses it', async () => {
  for (const name of ['iris', 'echo']) {
    assert.ok(existsSync(join(served.ready.socketDir, `${name}.frames.sock`)), `${name}.frames.sock`);
    assert.ok(existsSync(join(served.ready.socketDir, `${name}.sock`)), `${name}.sock stays for outside clients`);
  }
  assert.match(served.stderr(), /"msg":"serving","model":"iris".*"frames":"[^"]*iris\.frames\.sock"/);
});

test('REST round trip through the frames: the answer, its id and version; errors keep their status and message', async () => {
  const ok = await http(served.ready.http, '/v2/models/iris/infer', irisJson({ id: 'r-1' }));
  assert.is(ok.status, 200);
  assert.is(ok.body.id, 'r-1');
  assert.is(ok.body.model_version, '1.0.0');
  assert.equal(ok.body.outputs.find((o: { name: string }) => o.name === 'label').data, [0]);
  const versioned = await http(served.ready.http, '/v2/models/iris/versions/1.0.0/infer', irisJson());
  assert.is(versioned.status, 200);
  const wrongVersion = await http(served.ready.http, '/v2/models/iris/versions/9/infer', irisJson());
  assert.is(wrongVersion.status, 404);
  assert.match(wrongVersion.body.error, /model 'iris' version '9' is not served here/);
  const badInput = await http(served.ready.http, '/v2/models/iris/infer', { inputs: [{ name: 'nope', datatype: 'FP32', shape: [1, 4], data: ROW }] });
  assert.is(badInput.status, 400);
  assert.match(badInput.body.error, /unknown input 'nope'/);
  const notJson = await http(served.ready.http, '/v2/models/iris/infer', '{"inputs": [');
  assert.is(notJson.status, 400);
  assert.match(notJson.body.error, /request body is not JSON/);
  const metrics = (await http(served.ready.http, '/metrics')).text;
  assert.match(metrics, /pyml_request_errors_total\{model="iris",version="1.0.0",protocol="http",code="INVALID_ARGUMENT"\} [1-9]/);
});

test('gRPC round trip through the frames: ModelInfer, ModelMetadata, ModelReady by version; INVALID_ARGUMENT keeps pyml-tensor', async () => {
  const res = await client.call('ModelInfer', { model_name: 'iris', id: 'g-1', inputs: [{ name: 'input', datatype: 'FP32', shape: [1, 4], contents: { fp32_contents: ROW } }] });
  assert.is(res.id, 'g-1');
  assert.equal(res.outputs.find((o: { name: string }) => o.name === 'label').contents.int64_contents.map(Number), [0]);
  const meta = await client.call('ModelMetadata', { name: 'echo', version: '' });
  assert.equal(meta.inputs.map((i: { name: string }) => i.name), ['x']);
  assert.is((await client.call('ModelReady', { name: 'iris', version: '1.0.0' })).ready, true);
  assert.is((await client.call('ModelReady', { name: 'iris', version: '2.0.0' })).ready, false);
  const bad = await callError(client.call('ModelInfer', { model_name: 'echo', inputs: [{ name: 'x', datatype: 'FP32', shape: [1, 3], contents: { fp32_contents: [1, 2, 3] } }] }));
  assert.is(bad.code, status.INVALID_ARGUMENT);
  assert.equal(bad.metadata.get('pyml-tensor'), ['x']);
});

test('a caller who leaves (REST abort, gRPC cancel) frees its slot at once, not when the model answers', async () => {
  const abort = new AbortController();
  const rest = fetch(`http://${served.ready.http}/v2/models/echo/infer`, {
    method: 'POST', signal: abort.signal, headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ inputs: [{ name: 'x', datatype: 'FP32', shape: [1, 2], data: [1, 5000] }] }),
  }).catch((e: Error) => e);
  const grpcClient = new Client(served.ready.grpc, credentials.createInsecure());
  const identity = (b: Buffer) => b;
  const request = encodeInferRequest({ modelName: 'echo', raw: true, inputs: [{ name: 'x', tensor: { dtype: 'FP32', shape: [1, 2], data: Float32Array.of(2, 5000) } }] });
  let grpcStatus: number | undefined;
  const call = grpcClient.makeUnaryRequest('/inference.GRPCInferenceService/ModelInfer', identity, identity, request, new Metadata(), (error) => { grpcStatus = error?.code; });
  await waitFor('two echo calls in flight', async () => (await inFlight('echo')) === 2);
  abort.abort();
  call.cancel();
  const freed = await waitFor('the slots freed', async () => (await inFlight('echo')) === 0, 4000);
  assert.ok(freed < 2000, `freed ${freed} ms after the callers left (the model answers after 5000 ms)`);
  assert.instance(await rest, Error);
  await waitFor('the gRPC call settled', () => grpcStatus !== undefined);
  assert.is(grpcStatus, status.CANCELLED);
  grpcClient.close();
  // The model serves on (its cancelled calls' answers are dropped when they come).
  assert.is((await http(served.ready.http, '/v2/models/echo/infer', { inputs: [{ name: 'x', datatype: 'FP32', shape: [1, 2], data: [3, 0] }] })).status, 200);
});

test('a model killed mid-call: REST and gRPC calls in flight fail at once naming the model, it restarts, REST answers again', async () => {
  const slowRest = (i: number) => http(served.ready.http, '/v2/models/echo/infer', { inputs: [{ name: 'x', datatype: 'FP32', shape: [1, 2], data: [i, 10_000] }] });
  const started = Date.now();
  const rest = [slowRest(1), slowRest(2)];
  const grpc = callError(client.call('ModelInfer', echoRequest([[3, 10_000]]), 30_000));
  await waitFor('three echo calls in flight', async () => (await inFlight('echo')) === 3);
  const pid = served.ready.models.find((m) => m.name === 'echo')!.pid!;
  const killedAt = Date.now();
  process.kill(pid, 'SIGKILL');
  for (const r of await Promise.all(rest)) {
    assert.is(r.status, 503, JSON.stringify(r.body));
    assert.match(r.body.error, /^model 'echo' (process was killed by SIGKILL|is unavailable: )/);
  }
  const failed = await grpc;
  assert.is(failed.code, status.UNAVAILABLE);
  assert.match(failed.details, /^model 'echo' /);
  assert.ok(Date.now() - killedAt < 2000, `calls failed ${Date.now() - killedAt} ms after the kill (${Date.now() - started} ms after they began)`);
  await waitFor('echo ready again', async () => (await client.call('ModelReady', { name: 'echo', version: '' })).ready === true);
  const again = await http(served.ready.http, '/v2/models/echo/infer', { inputs: [{ name: 'x', datatype: 'FP32', shape: [1, 2], data: [42, 0] }] });
  assert.is(again.status, 200);
  assert.equal(again.body.outputs[0].data, [42, 0]);
});

test('a response over --max-message-bytes is refused by the model, RESOURCE_EXHAUSTED naming the limit', async () => {
  const small = await startServe([built.images.echo, '--max-message-bytes', '3000']);
  const c = v2Client(small.ready.grpc);
  try {
    // 300 rows: 2,400 bytes of input, over 3,000 bytes of answer (y and rows).
    const rows = Array.from({ length: 300 }, (_, i): [number, number] => [i, 0]);
    const failure = await callError(c.call('ModelInfer', echoRequest(rows)));
    assert.is(failure.code, status.RESOURCE_EXHAUSTED);
    assert.match(failure.details, /larger than the limit of 3000 bytes/);
    assert.equal((await c.call('ModelInfer', echoRequest([[7, 0]]))).outputs[0].contents.fp32_contents, [7, 0]);
  } finally {
    c.close();
    await small.stop();
  }
});

test.run();
