import { rm } from 'node:fs/promises';
import { join } from 'node:path';
import { status } from '@grpc/grpc-js';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { tempDir } from '../helpers/project.ts';
import { type Served, type V2Client, buildImages, callError, http, startServe, v2Client, waitFor } from './fixtures.ts';

/**
 * `--model NAME=unix:///path.sock`: a model server that serve did not start (as in a Kubernetes pod, where the model
 * container shares a socket volume with the serve container). Here the model side is another `pyml serve` whose
 * --socket-dir is that volume.
 */

let built: Awaited<ReturnType<typeof buildImages>>;
let socketDir: string;
let modelSide: Served | undefined;
let front: Served;
let client: V2Client;

const IRIS = { model_name: 'iris', inputs: [{ name: 'input', datatype: 'FP32', shape: [1, 4], contents: { fp32_contents: [6.7, 3.0, 5.2, 2.3] } }] };

test.before(async () => {
  built = await buildImages(['iris']);
  socketDir = join(await tempDir('pyml-serve-volume-'), 'sockets');
  modelSide = await startServe([built.images.iris, '--socket-dir', socketDir]);
  front = await startServe(['--model', `iris=unix://${join(socketDir, 'iris.sock')}`]);
  client = v2Client(front.ready.grpc);
});

test.after(async () => {
  client?.close();
  if (front) assert.is(await front.stop(), 0);
  if (modelSide) await modelSide.stop();
  await built?.cleanup();
  if (socketDir) await rm(join(socketDir, '..'), { recursive: true, force: true });
});

test('an external endpoint is routed to once it answers ready', async () => {
  assert.is(front.ready.models[0].name, 'iris');
  assert.is(front.ready.models[0].source, `unix://${join(socketDir, 'iris.sock')}`);
  assert.is(front.ready.models[0].state, 'ready');
  const res = await client.call('ModelInfer', IRIS);
  assert.equal(res.outputs[1].contents.int64_contents, ['2']);
  const meta = await http(front.ready.http, '/v2/models/iris');
  assert.equal(meta.body.outputs.map((o: { name: string }) => o.name), ['probabilities', 'label']);
});

test('the endpoint going away makes the model not ready (the service stays up); it is used again when back', async () => {
  assert.is(await modelSide!.stop(), 0);
  modelSide = undefined;
  await waitFor('iris not ready', async () => (await client.call('ModelReady', { name: 'iris', version: '' })).ready === false, 10_000);
  const down = await callError(client.call('ModelInfer', IRIS));
  assert.is(down.code, status.UNAVAILABLE);
  assert.match(down.details, /model 'iris' is unavailable: endpoint unix:\/\/.*iris\.sock/);
  assert.equal(await client.call('ServerLive', {}), { live: true });
  modelSide = await startServe([built.images.iris, '--socket-dir', socketDir]);
  await waitFor('iris ready again', async () => (await client.call('ModelReady', { name: 'iris', version: '' })).ready === true, 15_000);
  assert.equal((await client.call('ModelInfer', IRIS)).outputs[1].contents.int64_contents, ['2']);
});

test.run();
