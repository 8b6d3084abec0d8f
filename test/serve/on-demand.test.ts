import { execFileSync } from 'node:child_process';
import { status } from '@grpc/grpc-js';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { type Served, type V2Client, buildImages, callError, echoRequest, http, startServe, v2Client, waitFor } from './fixtures.ts';

/** `pyml serve` as users run it by default: models start at their first call, and (here) stop after 5 s unused (long enough that a loaded machine's slow scrape or start between two tests does not park the model early). */

let built: Awaited<ReturnType<typeof buildImages>>;
let served: Served;
let client: V2Client;

test.before(async () => {
  built = await buildImages(['echo', 'broken']);
  served = await startServe([built.images.echo, built.images.broken, '--start', 'on-demand', '--idle-timeout-s', '5']);
  client = v2Client(served.ready.grpc);
});

test.after(async () => {
  client?.close();
  if (served) assert.is(await served.stop(), 0, 'serve exits 0 on SIGTERM');
  await built?.cleanup();
});

/** The model processes serve has running now: the children whose command line names a model socket. */
function modelChildren(): string[] {
  let out = '';
  try {
    out = execFileSync('ps', ['-o', 'pid=,args=', '--ppid', String(served.ready.pid)], { encoding: 'utf8' });
  } catch {
    // ps exits 1 when there are no children.
  }
  return out.split('\n').filter((l) => /\.sock\b/.test(l));
}

const echoChildren = () => modelChildren().filter((l) => l.includes('echo.sock'));
const count = (text: string, pattern: RegExp) => text.split('\n').filter((l) => pattern.test(l)).length;

test('at start-up nothing runs: models are idle, and idle counts as ready', async () => {
  assert.equal(served.ready.models.map((m) => [m.name, m.state, m.pid]), [['echo', 'idle', undefined], ['broken', 'idle', undefined]]);
  assert.equal(modelChildren(), []);
  assert.equal(await client.call('ServerReady', {}), { ready: true });
  assert.equal(await client.call('ModelReady', { name: 'echo', version: '' }), { ready: true });
  assert.equal(await client.health('echo'), { status: 'SERVING' });
  assert.is((await http(served.ready.http, '/v2/health/ready')).status, 200);
  const metrics = (await http(served.ready.http, '/metrics')).text;
  assert.match(metrics, /pyml_model_ready\{model="echo",version="0.1.0"\} 1/);
  assert.match(metrics, /pyml_model_running\{model="echo",version="0.1.0"\} 0/);
});

test('concurrent first calls all wait for one start and each gets its own rows', async () => {
  const answers = await Promise.all(Array.from({ length: 12 }, (_, i) => client.call('ModelInfer', echoRequest([[i, 0], [100 + i, 0]]))));
  answers.forEach((a, i) => assert.equal(a.outputs[0].contents.fp32_contents, [i, 0, 100 + i, 0], `caller ${i}`));
  assert.is(echoChildren().length, 1, `one echo process: ${modelChildren().join('; ')}`);
  assert.is(count(served.stderr(), /"msg":"model ready".*"model":"echo"/), 1, 'started once');
  assert.match((await http(served.ready.http, '/metrics')).text, /pyml_model_running\{model="echo",version="0.1.0"\} 1/);
});

test('the first call to a model whose init fails gets UNAVAILABLE with the init error; then it is not ready', async () => {
  const error = await callError(client.call('ModelInfer', echoRequest([[1, 0]], 'broken')));
  assert.is(error.code, status.UNAVAILABLE);
  assert.match(error.details, /model 'broken' failed to start: .*weights are corrupt/, error.details);
  assert.equal(await client.call('ModelReady', { name: 'broken', version: '' }), { ready: false });
  assert.equal(await client.call('ServerReady', {}), { ready: false });
  const rest = await http(served.ready.http, '/v2/models/broken/infer', { inputs: [{ name: 'x', datatype: 'FP32', shape: [1, 2], data: [1, 0] }] });
  assert.is(rest.status, 503);
  assert.match(rest.body.error, /weights are corrupt/);
});

test('unused for the idle timeout, a model is stopped and back to idle; its next call starts it again', async () => {
  const before = echoChildren();
  assert.is(before.length, 1);
  // Readiness never flaps through the stop and the next start: calls would wait for the start in any case.
  const watch = client.watch('echo');
  await waitFor('echo to be stopped for idleness', () => echoChildren().length === 0 && /"msg":"model stopped for idleness".*"model":"echo"/.test(served.stderr()), 20_000);
  assert.equal(await client.call('ModelReady', { name: 'echo', version: '' }), { ready: true });
  assert.match((await http(served.ready.http, '/metrics')).text, /pyml_model_running\{model="echo",version="0.1.0"\} 0/);
  // Through HTTP this time: the REST front starts it the same way.
  const rest = await http(served.ready.http, '/v2/models/echo/infer', { inputs: [{ name: 'x', datatype: 'FP32', shape: [1, 2], data: [7, 0] }] });
  assert.is(rest.status, 200, JSON.stringify(rest.body));
  assert.equal(rest.body.outputs[0].data, [7, 0]);
  const after = echoChildren();
  assert.is(after.length, 1);
  assert.is.not(after[0].trim().split(/\s+/)[0], before[0].trim().split(/\s+/)[0], 'a new process');
  assert.is(count(served.stderr(), /"msg":"model ready".*"model":"echo"/), 2);
  assert.not.match(served.stderr(), /"msg":"model process died".*"model":"echo"/, 'an idle stop is not a crash');
  assert.equal(watch.received, ['SERVING']);
  watch.cancel();
});

test('after another idle stop, concurrent calls start it once more', async () => {
  await client.call('ModelInfer', echoRequest([[1, 0]]));
  await waitFor('echo to be stopped again', () => echoChildren().length === 0 && count(served.stderr(), /"msg":"model stopped for idleness".*"model":"echo"/) === 2, 20_000);
  const answers = await Promise.all([1, 2, 3].map((v) => client.call('ModelInfer', echoRequest([[v, 0]]))));
  assert.equal(answers.map((a) => a.outputs[0].contents.fp32_contents), [[1, 0], [2, 0], [3, 0]]);
});

test.run();
