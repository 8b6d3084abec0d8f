/** The cleanup stack runBatch undoes its set-up with: reverse order, every step, the first failure reported. */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { CleanupStack } from '../../packages/batch/src/cleanup-stack.ts';

test('steps run in the reverse order they were deferred, each awaited before the next', async () => {
  const ran: string[] = [];
  const cleanup = new CleanupStack();
  cleanup.defer(() => { ran.push('database'); });
  cleanup.defer(async () => { await new Promise((resolve) => setTimeout(resolve, 20)); ran.push('reader'); });
  cleanup.defer(() => { ran.push('transaction'); });
  await cleanup.run();
  assert.equal(ran, ['transaction', 'reader', 'database']);
});

test('a failing step does not stop the others; the first failure is thrown once all ran', async () => {
  const ran: string[] = [];
  const cleanup = new CleanupStack();
  cleanup.defer(() => { ran.push('first'); throw new Error('first set up, last to fail'); });
  cleanup.defer(() => { ran.push('second'); });
  cleanup.defer(async () => { ran.push('third'); throw new Error('third set up, first to fail'); });
  const error = await cleanup.run().then(() => undefined, (e: Error) => e);
  assert.equal(ran, ['third', 'second', 'first']);
  assert.is(error?.message, 'third set up, first to fail');
});

test('a stack runs each step once', async () => {
  let runs = 0;
  const cleanup = new CleanupStack();
  cleanup.defer(() => { runs++; });
  await cleanup.run();
  await cleanup.run();
  assert.is(runs, 1);
});

test.run();
