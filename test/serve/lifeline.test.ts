import { processAlive } from '@pyml/image';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { buildImages, echoRequest, startServe, v2Client, waitFor } from './fixtures.ts';

/** A model process never outlives `pyml serve`, even when serve is killed with SIGKILL and cannot stop it. */

test('kill -9 of pyml serve: its model process notices (its stdin lifeline ends) and exits', async () => {
  const built = await buildImages(['echo']);
  try {
    const served = await startServe([built.images.echo]);
    const client = v2Client(served.ready.grpc);
    assert.equal((await client.call('ModelInfer', echoRequest([[5, 0]]))).outputs[0].contents.fp32_contents, [5, 0]);
    client.close();
    const modelPid = served.ready.models[0].pid!;
    assert.ok(processAlive(modelPid));
    served.child.kill('SIGKILL');
    await waitFor(`model process ${modelPid} to exit after serve was killed`, () => !processAlive(modelPid), 15_000);
  } finally {
    await built.cleanup();
  }
});

test.run();
