import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { makeRoot, startServe } from './fixtures.ts';
import { v2Client } from './v2-client.ts';

/** Request i carries (i % 3) + 1 distinct rows; its answer must be exactly its own rows, transformed. */
function rowsFor(i: number): { x: number[]; n: bigint[] } {
  const count = (i % 3) + 1;
  const x: number[] = [];
  const n: bigint[] = [];
  for (let r = 0; r < count; r++) {
    x.push(i * 100 + r, i + 0.5, -i, r);
    n.push(BigInt(i * 1000 + r));
  }
  return { x, n };
}

async function fire(socket: string, calls: number, raw: boolean) {
  const client = v2Client(socket);
  try {
    return await Promise.all(Array.from({ length: calls }, async (_, i) => {
      const { x, n } = rowsFor(i);
      const inputs = [{ name: 'x', datatype: 'FP32', shape: [n.length, 4] }, { name: 'n', datatype: 'INT64', shape: [n.length] }];
      const res = await client.call('ModelInfer', raw
        ? { model_name: 'affine', id: `c${i}`, inputs, raw_input_contents: [Buffer.from(Float32Array.from(x).buffer), Buffer.from(BigInt64Array.from(n).buffer)] }
        : { model_name: 'affine', id: `c${i}`, inputs: [{ ...inputs[0], contents: { fp32_contents: x } }, { ...inputs[1], contents: { int64_contents: n.map(String) } }] });
      return { i, res };
    }));
  } finally {
    client.close();
  }
}

test('64 concurrent calls are merged into fewer model calls, and each caller gets exactly its own rows', async () => {
  const fixture = makeRoot('affine', { maxBatchSize: 32, maxBatchDelayMs: 20 });
  const log = join(fixture.root, 'calls.log');
  const served = await startServe(fixture.root, { env: { PYML_TEST_CALL_LOG: log } });
  try {
    for (const raw of [false, true]) {
      const results = await fire(served.socket, 64, raw);
      for (const { i, res } of results) {
        const { x, n } = rowsFor(i);
        assert.is(res.id, `c${i}`);
        assert.equal(res.outputs[0].shape, [String(n.length), '4']);
        const y = raw ? Array.from(new Float32Array(new Uint8Array(res.raw_output_contents[0]).buffer)) : res.outputs[0].contents.fp32_contents;
        const m = raw ? Array.from(new BigInt64Array(new Uint8Array(res.raw_output_contents[1]).buffer), String) : res.outputs[1].contents.int64_contents;
        assert.equal(y, Array.from(Float32Array.from(x, (v) => Math.fround(v) * 2 + 0.1)), `caller ${i}`);
        assert.equal(m, n.map((v) => String(v * 3n)), `caller ${i}`);
      }
    }
    const calls = readFileSync(log, 'utf8').trim().split('\n').map(Number);
    const totalRows = 2 * Array.from({ length: 64 }, (_, i) => (i % 3) + 1).reduce((a, b) => a + b, 0);
    assert.is(calls.reduce((a, b) => a + b, 0), totalRows);
    assert.ok(calls.length < 2 * 64, `expected merged calls, got ${calls.length} model calls`);
    assert.ok(Math.max(...calls) > 3, 'some model call saw more rows than any single request');
    assert.ok(Math.max(...calls) <= 32, 'no model call exceeds maxBatchSize');
  } finally {
    assert.is(await served.stop(), 0);
    fixture.cleanup();
  }
});

test('a lone caller never waits for the batch delay, not even right after concurrent traffic', async () => {
  // A long delay: any call that waited for it would take ≥ 400 ms.
  const fixture = makeRoot('affine', { maxBatchSize: 32, maxBatchDelayMs: 400 });
  const log = join(fixture.root, 'calls.log');
  const served = await startServe(fixture.root, { env: { PYML_TEST_CALL_LOG: log } });
  const client = v2Client(served.socket);
  const lone = async () => {
    const started = Date.now();
    await client.call('ModelInfer', { model_name: 'affine', inputs: [{ name: 'x', datatype: 'FP32', shape: [1, 4], contents: { fp32_contents: [1, 2, 3, 4] } }, { name: 'n', datatype: 'INT64', shape: [1], contents: { int64_contents: ['1'] } }] });
    return Date.now() - started;
  };
  try {
    for (let i = 0; i < 5; i++) assert.ok((await lone()) < 200, 'a lone call runs at the next turn');
    // Concurrent callers: merged, so the batcher now waits for company (after a 1 ms lull at most, not 400 ms).
    await fire(served.socket, 16, true);
    const calls = readFileSync(log, 'utf8').trim().split('\n').map(Number);
    assert.ok(Math.max(...calls) > 1, 'the concurrent calls were merged');
    const after = [];
    for (let i = 0; i < 5; i++) after.push(await lone());
    assert.ok(Math.max(...after) < 200, `lone calls after a burst took ${after.join(', ')} ms: none waited for the 400 ms delay`);
  } finally {
    client.close();
    assert.is(await served.stop(), 0);
    fixture.cleanup();
  }
});

test('batching is off when maxBatchSize ≤ 1: one model call per request', async () => {
  const fixture = makeRoot('affine', { maxBatchSize: 1, maxBatchDelayMs: 20 });
  const log = join(fixture.root, 'calls.log');
  const served = await startServe(fixture.root, { env: { PYML_TEST_CALL_LOG: log } });
  try {
    const results = await fire(served.socket, 16, true);
    assert.is(results.length, 16);
    assert.is(readFileSync(log, 'utf8').trim().split('\n').length, 16);
  } finally {
    assert.is(await served.stop(), 0);
    fixture.cleanup();
  }
});

test('a bad request does not poison the batch it would have joined', async () => {
  const fixture = makeRoot('affine', { maxBatchSize: 64, maxBatchDelayMs: 30 });
  const served = await startServe(fixture.root);
  const client = v2Client(served.socket);
  try {
    const good = client.call('ModelInfer', {
      model_name: 'affine',
      inputs: [{ name: 'x', datatype: 'FP32', shape: [1, 4], contents: { fp32_contents: [1, 1, 1, 1] } }, { name: 'n', datatype: 'INT64', shape: [1], contents: { int64_contents: ['1'] } }],
    });
    const bad = client.call('ModelInfer', {
      model_name: 'affine',
      inputs: [{ name: 'x', datatype: 'FP32', shape: [1, 4], contents: { fp32_contents: [1, 1, 1, 1] } }, { name: 'n', datatype: 'INT32', shape: [1], contents: { int_contents: [1] } }],
    }).then(() => 'ok', (e: { details: string }) => e.details);
    assert.equal((await good).outputs[1].contents.int64_contents, ['3']);
    assert.match(await bad, /input 'n': expected dtype INT64, got INT32/);
  } finally {
    client.close();
    assert.is(await served.stop(), 0);
    fixture.cleanup();
  }
});

test('serving.maxConcurrency bounds concurrent model calls', async () => {
  async function peakActive(serving: { maxConcurrency?: number }): Promise<number> {
    const fixture = makeRoot('affine', serving);
    const log = join(fixture.root, 'active.log');
    const served = await startServe(fixture.root, { env: { PYML_TEST_ACTIVE_LOG: log, PYML_TEST_DELAY_MS: '150' } });
    try {
      await fire(served.socket, 6, true);
      return Math.max(...readFileSync(log, 'utf8').trim().split('\n').map(Number));
    } finally {
      assert.is(await served.stop(), 0);
      fixture.cleanup();
    }
  }
  assert.ok((await peakActive({})) > 1, 'without a limit the async model overlaps calls');
  assert.is(await peakActive({ maxConcurrency: 1 }), 1);
});

test.run();
