import { Float64, Table, Utf8, tableFromIPC, tableToIPC, vectorFromArray } from 'apache-arrow';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { makeRoot, runEntrypoint, startServe } from './fixtures.ts';
import { v2Client } from './v2-client.ts';

test('a dataframe model is served as one 1-D tensor per column, with the same answers as batch', async () => {
  const fixture = makeRoot('frame');
  const served = await startServe(fixture.root);
  const client = v2Client(served.socket);
  try {
    const meta = await client.call('ModelMetadata', { name: 'frame', version: '' });
    assert.is(meta.platform, 'pyml-dataframe');
    assert.equal(meta.inputs, [{ name: 'a', datatype: 'FP64', shape: ['-1'] }, { name: 'name', datatype: 'BYTES', shape: ['-1'] }]);
    const a = [0.1, -3.25, 1e10];
    const names = ['zoë', '', 'x y'];
    const res = await client.call('ModelInfer', {
      model_name: 'frame',
      inputs: [
        { name: 'a', datatype: 'FP64', shape: [3], contents: { fp64_contents: a } },
        { name: 'name', datatype: 'BYTES', shape: [3], contents: { bytes_contents: names.map((s) => Buffer.from(s)) } },
      ],
    });
    const score = res.outputs[0].contents.fp64_contents as number[];
    const greeting = (res.outputs[1].contents.bytes_contents as Buffer[]).map((b) => b.toString());
    assert.equal(score, a.map((v) => v * 2 + 1));
    assert.equal(greeting, names.map((s) => `hi ${s}`));

    const input = new Table({ a: vectorFromArray(a, new Float64()), name: vectorFromArray(names, new Utf8()) });
    const run = await runEntrypoint(fixture.root, ['batch'], { stdin: tableToIPC(input, 'stream') });
    assert.is(run.code, 0, run.stderr);
    const offline = tableFromIPC(run.stdout);
    const offlineScore = offline.getChild('score')!.toArray() as Float64Array;
    assert.equal(Buffer.from(offlineScore.buffer, offlineScore.byteOffset, offlineScore.byteLength), Buffer.from(Float64Array.from(score).buffer));
    assert.equal([...offline.getChild('greeting')!], greeting);
  } finally {
    client.close();
    assert.is(await served.stop(), 0);
    fixture.cleanup();
  }
});

test('a dataframe input with the wrong column type is INVALID_ARGUMENT naming the column', async () => {
  const fixture = makeRoot('frame');
  const served = await startServe(fixture.root);
  const client = v2Client(served.socket);
  try {
    const error = await client.call('ModelInfer', {
      model_name: 'frame',
      inputs: [
        { name: 'a', datatype: 'FP32', shape: [1], contents: { fp32_contents: [1] } },
        { name: 'name', datatype: 'BYTES', shape: [1], contents: { bytes_contents: [Buffer.from('q')] } },
      ],
    }).then(() => undefined, (e: { code: number; details: string }) => e);
    assert.ok(error);
    assert.is(error.code, 3);
    assert.match(error.details, /input 'a': expected dtype FP64, got FP32/);
  } finally {
    client.close();
    assert.is(await served.stop(), 0);
    fixture.cleanup();
  }
});

test.run();
