import { spawn } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { status } from '@grpc/grpc-js';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { ENTRYPOINT, REPO, makeRoot, startGatedServer } from './fixtures.ts';
import { v2Client } from './v2-client.ts';

test('health Watch: the status at once, then each change; unknown services stay open on SERVICE_UNKNOWN; drain ends watches', async () => {
  const { fixture, socket, gate, child, exited, stdout } = await startGatedServer('affine');
  const client = v2Client(socket);
  try {
    // While init runs: the server is known but not serving, the model's name is not known yet.
    const server = client.watch('');
    const inference = client.watch('inference.GRPCInferenceService');
    const model = client.watch('affine');
    const unknown = client.watch('no-such-service');
    assert.is(await server.next(), 'NOT_SERVING');
    assert.is(await inference.next(), 'NOT_SERVING');
    assert.is(await model.next(), 'SERVICE_UNKNOWN');
    assert.is(await unknown.next(), 'SERVICE_UNKNOWN');

    writeFileSync(gate, '');
    assert.is(await server.next(), 'SERVING');
    assert.is(await inference.next(), 'SERVING');
    assert.is(await model.next(), 'SERVING', 'the model became known: its status follows');
    while (!stdout().includes('\n')) await new Promise((r) => setTimeout(r, 20));
    // A watch opened now starts from the current status.
    const late = client.watch('affine');
    assert.is(await late.next(), 'SERVING');
    // Nothing changed for the unknown service: one message, the call still open.
    await new Promise((r) => setTimeout(r, 200));
    assert.equal(unknown.received, ['SERVICE_UNKNOWN']);

    child.kill('SIGTERM');
    assert.is(await server.next(), 'NOT_SERVING');
    assert.is(await model.next(), 'NOT_SERVING');
    for (const w of [server, inference, model, unknown, late]) assert.is((await w.ended).code, status.OK, 'the drain ends every watch with OK');
    assert.equal(server.received, ['NOT_SERVING', 'SERVING', 'NOT_SERVING'], 'no repeated statuses');
    assert.equal(unknown.received, ['SERVICE_UNKNOWN'], 'an unknown service stays unknown to the end');
    assert.is(await exited, 0, 'open watches do not hold the drain');
  } finally {
    client.close();
    child.kill('SIGKILL');
    fixture.cleanup();
  }
});

test('health Watch: a client that cancels its watch leaves the server serving', async () => {
  const fixture = makeRoot('affine');
  const socket = join(fixture.root, 'model.sock');
  const child = spawn(process.execPath, ['--import', 'tsx', ENTRYPOINT, 'serve', '--socket', socket], {
    cwd: REPO, env: { ...process.env, PYML_ROOT: fixture.root }, stdio: ['ignore', 'pipe', 'ignore'],
  });
  const exited = new Promise<number | null>((r) => child.on('exit', r));
  const ready = new Promise<void>((r) => child.stdout.once('data', () => r()));
  const client = v2Client(socket);
  try {
    await ready;
    const watch = client.watch('affine');
    assert.is(await watch.next(), 'SERVING');
    watch.cancel();
    assert.is((await watch.ended).code, status.CANCELLED);
    assert.equal(await client.health('affine'), { status: 'SERVING' });
    const again = client.watch('');
    assert.is(await again.next(), 'SERVING');
    child.kill('SIGTERM');
    assert.is((await again.ended).code, status.OK);
    assert.is(await exited, 0);
  } finally {
    client.close();
    child.kill('SIGKILL');
    fixture.cleanup();
  }
});

test.run();
