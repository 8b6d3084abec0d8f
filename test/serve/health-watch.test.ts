import { status } from '@grpc/grpc-js';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { buildImages, callError, startServe, v2Client } from './fixtures.ts';

/** grpc.health.v1 Watch on `pyml serve`, with a stock grpc-js client: the service and each model, followed live. */

test('health Watch follows a model through a crash and restart, keeps unknown services open, and ends on shutdown', async () => {
  const built = await buildImages(['echo']);
  const served = await startServe([built.images.echo]);
  const client = v2Client(served.ready.grpc);
  try {
    const whole = client.watch('');
    const model = client.watch('echo');
    const unknown = client.watch('no-such-model');
    assert.is(await whole.next(), 'SERVING');
    assert.is(await model.next(), 'SERVING');
    assert.is(await unknown.next(), 'SERVICE_UNKNOWN');
    assert.is((await callError(client.health('no-such-model'))).code, status.NOT_FOUND, 'Check on an unknown service stays NOT_FOUND');

    // The model dies: its watchers hear NOT_SERVING, then SERVING once the supervisor has restarted it.
    process.kill(served.ready.models[0].pid!, 'SIGKILL');
    assert.is(await model.next(), 'NOT_SERVING');
    assert.is(await whole.next(), 'NOT_SERVING');
    assert.is(await model.next(30_000), 'SERVING');
    assert.is(await whole.next(), 'SERVING');
    assert.equal(await client.health('echo'), { status: 'SERVING' });
    assert.equal(unknown.received, ['SERVICE_UNKNOWN'], 'nothing changed for an unknown service');

    // Shutdown: NOT_SERVING, then every watch ends with OK and the service exits cleanly.
    const stopped = served.stop();
    for (const w of [whole, model]) {
      assert.is(await w.next(), 'NOT_SERVING');
      assert.is((await w.ended).code, status.OK);
    }
    assert.is((await unknown.ended).code, status.OK);
    assert.is(await stopped, 0, 'open watches do not hold the shutdown');
  } finally {
    client.close();
    served.child.kill('SIGKILL');
    await built.cleanup();
  }
});

test.run();
