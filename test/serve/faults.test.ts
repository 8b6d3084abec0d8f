import { status } from '@grpc/grpc-js';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { type Served, type V2Client, buildImages, echoRequest, http, startServe, v2Client, waitFor } from './fixtures.ts';

/** A model process killed with SIGKILL under load: in-flight calls fail fast, the model comes back, others serve on. */

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

const IRIS = { model_name: 'iris', inputs: [{ name: 'input', datatype: 'FP32', shape: [1, 4], contents: { fp32_contents: [5.1, 3.5, 1.4, 0.2] } }] };

test('kill -9 of a model under load: in-flight calls get UNAVAILABLE at once, it restarts, iris never stops', async () => {
  // Iris under steady load for the whole test.
  let irisOk = 0;
  let irisFailed = 0;
  let loading = true;
  const irisLoad = Promise.all(Array.from({ length: 4 }, async () => {
    while (loading) {
      try {
        await client.call('ModelInfer', IRIS);
        irisOk++;
      } catch {
        irisFailed++;
      }
    }
  }));
  // Eight echo calls that would take 10 s each.
  const slow = Array.from({ length: 8 }, (_, i) => {
    const started = Date.now();
    return client.call('ModelInfer', echoRequest([[i, 10_000]]), 30_000).then(
      () => ({ ok: true, code: status.OK, details: '', ms: Date.now() - started }),
      (e: { code: number; details: string }) => ({ ok: false, code: e.code, details: e.details, ms: Date.now() - started }),
    );
  });
  try {
    await killUnderLoad(slow);
  } finally {
    loading = false;
    await irisLoad;
  }
  assert.is(irisFailed, 0, 'iris kept serving');
  assert.ok(irisOk > 20, `iris answered ${irisOk} calls during the restart`);
  const metrics = (await http(served.ready.http, '/metrics')).text;
  assert.match(metrics, /pyml_model_restarts_total\{model="echo",version="0.1.0"\} 1/);
  assert.match(served.stderr(), /"msg":"model process died".*"model":"echo".*"signal":"SIGKILL"/);
});

async function killUnderLoad(slow: Promise<{ ok: boolean; code: number; details: string; ms: number }>[]): Promise<void> {
  const echoPid = served.ready.models.find((m) => m.name === 'echo')!.pid!;
  await waitFor('echo calls in flight', async () => /pyml_model_in_flight\{model="echo",version="0.1.0"\} 8/.test((await http(served.ready.http, '/metrics')).text));
  const killedAt = Date.now();
  process.kill(echoPid, 'SIGKILL');
  const results = await Promise.all(slow);
  const failedWithin = Date.now() - killedAt;
  for (const r of results) {
    assert.is(r.code, status.UNAVAILABLE, `${r.code} ${r.details}`);
    // Whichever comes first: the supervisor seeing the exit, or the connection dropping.
    assert.match(r.details, /^model 'echo' (process was killed by SIGKILL|is unavailable: )/);
  }
  assert.ok(failedWithin < 2000, `in-flight calls failed ${failedWithin} ms after the kill`);

  // While it restarts, new calls fail fast too; then it is back.
  const back = await waitFor('echo ready again', async () => (await client.call('ModelReady', { name: 'echo', version: '' })).ready === true);
  assert.ok(back < 15_000, `restarted in ${back} ms`);
  assert.equal((await client.call('ModelInfer', echoRequest([[42, 0]]))).outputs[0].contents.fp32_contents, [42, 0]);
}

test('a model that dies while idle is restarted too, and killing it again backs off but recovers', async () => {
  const metrics = (await http(served.ready.http, '/metrics')).text;
  assert.match(metrics, /pyml_model_ready\{model="echo",version="0.1.0"\} 1/);
  // Find the new echo pid from the process table: the restarted child of serve.
  const { execFileSync } = await import('node:child_process');
  const children = execFileSync('ps', ['-o', 'pid=,args=', '--ppid', String(served.ready.pid)], { encoding: 'utf8' });
  const line = children.split('\n').find((l) => l.includes('echo.sock'));
  assert.ok(line, `echo child among:\n${children}`);
  process.kill(Number(line!.trim().split(/\s+/)[0]), 'SIGKILL');
  const error = await waitFor('echo to go down', async () => (await client.call('ModelReady', { name: 'echo', version: '' })).ready === false, 5000);
  assert.ok(error >= 0);
  await waitFor('echo ready again', async () => (await client.call('ModelReady', { name: 'echo', version: '' })).ready === true);
  assert.equal((await client.call('ModelInfer', echoRequest([[3, 0]]))).outputs[0].contents.fp32_contents, [3, 0]);
  assert.match((await http(served.ready.http, '/metrics')).text, /pyml_model_restarts_total\{model="echo",version="0.1.0"\} 2/);
});

test.run();
