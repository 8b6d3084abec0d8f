import { statSync } from 'node:fs';
import { status } from '@grpc/grpc-js';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { type Served, makeRoot, startServe } from './fixtures.ts';
import { type Msg, type V2Client, callError, v2Client } from './v2-client.ts';

let fixture: ReturnType<typeof makeRoot>;
let served: Served;
let client: V2Client;

test.before(async () => {
  fixture = makeRoot('affine');
  served = await startServe(fixture.root);
  client = v2Client(served.socket);
});

test.after(async () => {
  client.close();
  assert.is(await served.stop(), 0);
  fixture.cleanup();
});

const X = [1, 2, 3, 4, -0.5, 0.25, 1e-3, 7];
const expectedY = (xs: number[]) => Array.from(Float32Array.from(xs, (v) => Math.fround(Math.fround(v) * 2 + 0.1)));

test('prints a ready line and serves on an owner-only Unix socket', () => {
  assert.is(served.ready.ready, true);
  assert.is(served.ready.socket, served.socket);
  assert.ok(statSync(served.socket).isSocket());
  assert.is(statSync(served.socket).mode & 0o777, 0o600);
});

test('live, ready, model ready, health', async () => {
  assert.equal(await client.call('ServerLive', {}), { live: true });
  assert.equal(await client.call('ServerReady', {}), { ready: true });
  assert.equal(await client.call('ModelReady', { name: 'affine', version: '' }), { ready: true });
  assert.equal(await client.call('ModelReady', { name: 'other', version: '' }), { ready: false });
  assert.equal(await client.health(), { status: 'SERVING' });
  assert.equal(await client.health('inference.GRPCInferenceService'), { status: 'SERVING' });
  assert.is((await callError(client.health('nope'))).code, status.NOT_FOUND);
});

test('server and model metadata come from the manifest and signature', async () => {
  const server = await client.call('ServerMetadata', {});
  assert.is(server.name, 'pyml');
  assert.ok(server.version);
  const meta = await client.call('ModelMetadata', { name: 'affine', version: '' });
  assert.equal(meta, {
    name: 'affine', versions: ['1.2.0'], platform: 'pyml-tensor',
    inputs: [{ name: 'x', datatype: 'FP32', shape: ['-1', '4'] }, { name: 'n', datatype: 'INT64', shape: ['-1'] }],
    outputs: [{ name: 'y', datatype: 'FP32', shape: ['-1', '4'] }, { name: 'm', datatype: 'INT64', shape: ['-1'] }],
  });
  assert.is((await callError(client.call('ModelMetadata', { name: 'ghost', version: '' }))).code, status.NOT_FOUND);
});

test('infer with typed contents answers typed contents', async () => {
  const res = await client.call('ModelInfer', {
    model_name: 'affine', id: 'req-1',
    inputs: [
      { name: 'x', datatype: 'FP32', shape: [2, 4], contents: { fp32_contents: X } },
      { name: 'n', datatype: 'INT64', shape: [2], contents: { int64_contents: ['5', '-9007199254740993'] } },
    ],
  });
  assert.is(res.model_name, 'affine');
  assert.is(res.model_version, '1.2.0');
  assert.is(res.id, 'req-1');
  assert.equal(res.raw_output_contents, []);
  const [y, m] = res.outputs as Msg[];
  assert.is(y.name, 'y');
  assert.is(y.datatype, 'FP32');
  assert.equal(y.shape, ['2', '4']);
  assert.equal(y.contents.fp32_contents, expectedY(X));
  assert.is(m.name, 'm');
  assert.equal(m.contents.int64_contents, ['15', String(-9007199254740993n * 3n)]);
});

test('infer with raw contents answers raw contents, bit for bit', async () => {
  const x = Float32Array.from(X);
  const n = BigInt64Array.from([1n, 2n ** 40n]);
  const res = await client.call('ModelInfer', {
    model_name: 'affine',
    inputs: [{ name: 'x', datatype: 'FP32', shape: [2, 4] }, { name: 'n', datatype: 'INT64', shape: [2] }],
    raw_input_contents: [Buffer.from(x.buffer), Buffer.from(n.buffer)],
  });
  assert.is(res.raw_output_contents.length, 2);
  assert.is(res.outputs[0].contents, null);
  const y = new Float32Array(new Uint8Array(res.raw_output_contents[0]).buffer);
  assert.equal(Array.from(y), expectedY(X));
  const m = new BigInt64Array(new Uint8Array(res.raw_output_contents[1]).buffer);
  assert.equal(Array.from(m), [3n, 3n * 2n ** 40n]);
});

test('raw_output parameter asks for raw outputs; requested outputs are honoured', async () => {
  const res = await client.call('ModelInfer', {
    model_name: 'affine', parameters: { raw_output: { bool_param: true } }, outputs: [{ name: 'm' }],
    inputs: [
      { name: 'x', datatype: 'FP32', shape: [1, 4], contents: { fp32_contents: [1, 2, 3, 4] } },
      { name: 'n', datatype: 'INT64', shape: [1], contents: { int64_contents: ['7'] } },
    ],
  });
  assert.equal(res.outputs.map((o: Msg) => o.name), ['m']);
  assert.equal(Array.from(new BigInt64Array(new Uint8Array(res.raw_output_contents[0]).buffer)), [21n]);
});

async function invalid(request: Msg): Promise<string> {
  const error = await callError(client.call('ModelInfer', { model_name: 'affine', ...request }));
  assert.is(error.code, status.INVALID_ARGUMENT, error.details);
  return error.details;
}

const okN = { name: 'n', datatype: 'INT64', shape: [1], contents: { int64_contents: ['1'] } };
const okX = { name: 'x', datatype: 'FP32', shape: [1, 4], contents: { fp32_contents: [1, 2, 3, 4] } };

test('bad requests are INVALID_ARGUMENT naming the tensor', async () => {
  assert.match(await invalid({ inputs: [okN] }), /missing input 'x'/);
  assert.match(await invalid({ inputs: [okX, okN, { ...okN, name: 'z' }] }), /unknown input 'z'/);
  assert.match(await invalid({ inputs: [{ ...okX, datatype: 'FP64', contents: { fp64_contents: [1, 2, 3, 4] } }, okN] }), /input 'x': expected dtype FP32, got FP64/);
  assert.match(await invalid({ inputs: [{ ...okX, shape: [1, 3], contents: { fp32_contents: [1, 2, 3] } }, okN] }), /input 'x': expected shape \[-1, 4\], got \[1, 3\]/);
  assert.match(await invalid({ inputs: [{ ...okX, shape: [4] }, okN] }), /input 'x': expected rank 2/);
  assert.match(await invalid({ inputs: [{ ...okX, shape: [2, 4] }, okN] }), /input 'x': shape \[2, 4\] needs 8 elements/);
  assert.match(await invalid({ inputs: [{ ...okX, datatype: 'FP33' }, okN] }), /input 'x': unknown datatype 'FP33'/);
  assert.match(await invalid({ inputs: [{ ...okX, contents: { int_contents: [1, 2, 3, 4] } }, okN] }), /input 'x': datatype FP32 travels in fp32_contents, got int_contents/);
  assert.match(await invalid({
    inputs: [{ name: 'x', datatype: 'FP32', shape: [1, 4] }, { name: 'n', datatype: 'INT64', shape: [1] }],
    raw_input_contents: [Buffer.alloc(12), Buffer.alloc(8)],
  }), /input 'x': shape \[1, 4\] of FP32 needs 16 bytes of raw contents, got 12/);
  assert.match(await invalid({ inputs: [okX, okN], outputs: [{ name: 'q' }] }), /unknown requested output 'q'/);
  const error = await callError(client.call('ModelInfer', { model_name: 'affine', inputs: [okN] }));
  assert.equal(error.metadata.get('pyml-tensor'), ['x']);
});

test('a model bug is INTERNAL, a model that blames the request is INVALID_ARGUMENT, and the server keeps serving', async () => {
  const wrongDtype = await callError(client.call('ModelInfer', { model_name: 'affine', inputs: [okX, { ...okN, contents: { int64_contents: ['-999'] } }] }));
  assert.is(wrongDtype.code, status.INTERNAL);
  assert.match(wrongDtype.details, /model output 'y': expected dtype FP32, got FP64/);
  const thrown = await callError(client.call('ModelInfer', { model_name: 'affine', inputs: [okX, { ...okN, contents: { int64_contents: ['-666'] } }] }));
  assert.is(thrown.code, status.INTERNAL);
  assert.match(thrown.details, /model exploded/);
  const blamed = await callError(client.call('ModelInfer', { model_name: 'affine', inputs: [okX, { ...okN, contents: { int64_contents: ['-777'] } }] }));
  assert.is(blamed.code, status.INVALID_ARGUMENT, 'a model that throws InvalidInput blames the request');
  assert.match(blamed.details, /n = -777 is not a valid count/);
  assert.equal(blamed.metadata.get('pyml-tensor'), ['n']);
  const unknownModel = await callError(client.call('ModelInfer', { model_name: 'ghost', inputs: [okX, okN] }));
  assert.is(unknownModel.code, status.NOT_FOUND);
  const res = await client.call('ModelInfer', { model_name: 'affine', inputs: [okX, okN] });
  assert.equal(res.outputs[1].contents.int64_contents, ['3']);
});

test.run();
