/**
 * The model processes pyml batch starts: each gets its share of the cores as intra-op threads and the malloc settings
 * that keep its large per-batch buffers in the heap (the user's own, when set).
 */
import { readFileSync } from 'node:fs';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { startModelProcesses } from '../../packages/batch/src/model-processes.ts';
import { buildIris } from './fixtures.ts';

let image = '';

test.before(async () => {
  image = await buildIris();
});

function environ(pid: number): Map<string, string> {
  const text = readFileSync(`/proc/${pid}/environ`, 'utf8');
  return new Map(text.split('\0').filter(Boolean).map((kv) => [kv.slice(0, kv.indexOf('=')), kv.slice(kv.indexOf('=') + 1)]));
}

test('each model process gets the batch malloc settings and one share of the cores', async () => {
  const models = await startModelProcesses(image, 2);
  try {
    for (const p of models.processes) {
      const env = environ(p.child.pid!);
      assert.is(env.get('MALLOC_MMAP_THRESHOLD_'), String(32 << 20));
      assert.is(env.get('MALLOC_TRIM_THRESHOLD_'), String(64 << 20));
      assert.is(env.get('MALLOC_TOP_PAD_'), String(16 << 20));
      assert.ok(Number(env.get('PYML_ORT_THREADS')) >= 1);
    }
  } finally {
    await models.kill();
  }
});

test("the user's own malloc setting is passed instead", async () => {
  process.env.MALLOC_TRIM_THRESHOLD_ = '12345';
  const models = await startModelProcesses(image, 1).finally(() => { delete process.env.MALLOC_TRIM_THRESHOLD_; });
  try {
    const env = environ(models.processes[0].child.pid!);
    assert.is(env.get('MALLOC_TRIM_THRESHOLD_'), '12345');
    assert.is(env.get('MALLOC_MMAP_THRESHOLD_'), String(32 << 20));
  } finally {
    await models.kill();
  }
});

test.run();
