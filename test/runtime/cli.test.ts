import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import {
  Field, FixedSizeList, Float64, RecordBatch, Schema, Struct, Table, Uint8, Utf8, makeData,
  tableFromIPC, tableToIPC, vectorFromArray,
} from 'apache-arrow';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { makeRoot, runEntrypoint, startServe } from './fixtures.ts';
import { type Msg, v2Client } from './v2-client.ts';

test('describe prints pyml.json', async () => {
  const fixture = makeRoot('affine');
  try {
    const run = await runEntrypoint(fixture.root, ['describe']);
    assert.is(run.code, 0, run.stderr);
    const manifest = JSON.parse(run.stdout.toString());
    assert.is(manifest.name, 'affine');
    assert.equal(manifest.signature.inputs[0], { name: 'x', dtype: 'FP32', shape: [-1, 4] });
  } finally {
    fixture.cleanup();
  }
});

test('predict: V2 JSON request from a file and from stdin, V2 JSON response out', async () => {
  const fixture = makeRoot('affine');
  try {
    const request = {
      id: 'cli-1',
      inputs: [
        { name: 'x', datatype: 'FP32', shape: [2, 4], data: [[1, 2, 3, 4], [5, 6, 7, 8]] },
        { name: 'n', datatype: 'INT64', shape: [2], data: [1, '9007199254740993'] },
      ],
    };
    const file = join(fixture.root, 'request.json');
    writeFileSync(file, JSON.stringify(request));
    const fromFile = await runEntrypoint(fixture.root, ['predict', '--input', file, '--json']);
    assert.is(fromFile.code, 0, fromFile.stderr);
    const text = fromFile.stdout.toString();
    assert.is(text.trim().split('\n').length, 1);
    // 3 × 9007199254740993 is written as an exact JSON number, not rounded through a double.
    assert.ok(text.includes('"data":[3,27021597764222979]'), text);
    const res = JSON.parse(text);
    assert.is(res.model_name, 'affine');
    assert.is(res.model_version, '1.2.0');
    assert.is(res.id, 'cli-1');
    assert.equal(res.outputs[0], {
      name: 'y', datatype: 'FP32', shape: [2, 4],
      data: Array.from(Float32Array.from([1, 2, 3, 4, 5, 6, 7, 8], (v) => v * 2 + 0.1)),
    });
    const fromStdin = await runEntrypoint(fixture.root, ['predict', '--input', '-'], { stdin: JSON.stringify(request) });
    assert.is(fromStdin.code, 0, fromStdin.stderr);
    assert.equal(JSON.parse(fromStdin.stdout.toString()), res);
  } finally {
    fixture.cleanup();
  }
});

test('predict: a bad input names the tensor and exits 1; bad usage exits 2', async () => {
  const fixture = makeRoot('affine');
  try {
    const bad = await runEntrypoint(fixture.root, ['predict', '--input', '-'], {
      stdin: JSON.stringify({ inputs: [{ name: 'x', datatype: 'FP32', shape: [1, 3], data: [1, 2, 3] }, { name: 'n', datatype: 'INT64', shape: [1], data: [1] }] }),
    });
    assert.is(bad.code, 1);
    assert.match(bad.stderr, /invalid input: input 'x': expected shape \[-1, 4\], got \[1, 3\]/);
    const usage = await runEntrypoint(fixture.root, ['predict']);
    assert.is(usage.code, 2);
    assert.match(usage.stderr, /predict needs --input/);
  } finally {
    fixture.cleanup();
  }
});

/** A grid batch: img as FixedSizeList<2> of FixedSizeList<3> of Uint8, tag as Utf8. */
function gridBatch(rows: number, seed: number): RecordBatch {
  const pixels = Uint8Array.from({ length: rows * 6 }, (_, i) => (i * 7 + seed * 13) % 23);
  const leaf = makeData({ type: new Uint8(), length: rows * 6, nullCount: 0, data: pixels });
  const inner = makeData({ type: new FixedSizeList(3, new Field('item', new Uint8(), false)), length: rows * 2, nullCount: 0, child: leaf });
  const outerType = new FixedSizeList(2, new Field('item', inner.type, false));
  const img = makeData({ type: outerType, length: rows, nullCount: 0, child: inner });
  const tag = vectorFromArray(Array.from({ length: rows }, (_, i) => `row-${seed}-${i}-é`), new Utf8()).data[0];
  const fields = [new Field('img', outerType, false), new Field('tag', new Utf8(), false)];
  return new RecordBatch(new Schema(fields), makeData({ type: new Struct(fields), length: rows, nullCount: 0, children: [img, tag] }));
}

test('batch: Arrow IPC in → Arrow IPC out, one batch per batch, nested FixedSizeList columns, equal to serve', async () => {
  const fixture = makeRoot('grid');
  try {
    const input = new Table([gridBatch(3, 1), gridBatch(5, 2), gridBatch(1, 3)]);
    const run = await runEntrypoint(fixture.root, ['batch'], { stdin: tableToIPC(input, 'stream') });
    assert.is(run.code, 0, run.stderr);
    const output = tableFromIPC(run.stdout);
    assert.equal(output.batches.map((b) => b.numRows), [3, 5, 1]);
    assert.equal(output.schema.fields.map((f) => f.name), ['total', 'bright', 'label']);
    assert.is(String(output.schema.fields[0].type), 'Float64');
    const brightType = output.schema.fields[1].type as FixedSizeList;
    assert.is(brightType.listSize, 2);
    assert.is(String(brightType.children[0].type), 'Bool');
    assert.is(output.getChild('label')!.get(0), 'ROW-1-0-É✓');

    // The same rows through the gRPC server give bitwise-identical outputs.
    const served = await startServe(fixture.root);
    const client = v2Client(served.socket);
    try {
      let row = 0;
      for (const batch of input.batches) {
        const img = batch.getChild('img')!.data[0].children[0].children[0].values as Uint8Array;
        const tags = [...batch.getChild('tag')!] as string[];
        const res = await client.call('ModelInfer', {
          model_name: 'grid',
          inputs: [{ name: 'img', datatype: 'UINT8', shape: [batch.numRows, 2, 3] }, { name: 'tag', datatype: 'BYTES', shape: [batch.numRows] }],
          raw_input_contents: [Buffer.from(img), Buffer.concat(tags.flatMap((t) => { const b = Buffer.from(t); const len = Buffer.alloc(4); len.writeUInt32LE(b.length); return [len, b]; }))],
        });
        const total = new Float64Array(new Uint8Array(res.raw_output_contents[0]).buffer);
        const offline = output.getChild('total')!.toArray().subarray(row, row + batch.numRows) as Float64Array;
        assert.equal(Buffer.from(total.buffer), Buffer.from(offline.buffer, offline.byteOffset, offline.byteLength));
        const bright = Array.from(new Uint8Array(res.raw_output_contents[1]));
        const offlineBright = [...output.getChild('bright')!].slice(row, row + batch.numRows).flatMap((v: Msg) => [...v].map(Number));
        assert.equal(bright, offlineBright);
        const labels = res.outputs[2] as Msg;
        assert.is(labels.datatype, 'BYTES');
        row += batch.numRows;
      }
    } finally {
      client.close();
      assert.is(await served.stop(), 0);
    }
  } finally {
    fixture.cleanup();
  }
});

test('batch: empty input gives an empty stream that still carries the output schema', async () => {
  const fixture = makeRoot('affine');
  try {
    const run = await runEntrypoint(fixture.root, ['batch'], { stdin: '' });
    assert.is(run.code, 0, run.stderr);
    const output = tableFromIPC(run.stdout);
    assert.is(output.numRows, 0);
    assert.equal(output.schema.fields.map((f) => `${f.name}:${String(f.type)}`), ['y:FixedSizeList[4]<Float32>', 'm:Int64']);
  } finally {
    fixture.cleanup();
  }
});

test('batch: a dataframe model gets each batch as a table', async () => {
  const fixture = makeRoot('frame');
  try {
    const input = new Table({ a: vectorFromArray([1.5, -2, 10], new Float64()), name: vectorFromArray(['ann', 'bo', 'cy'], new Utf8()) });
    const run = await runEntrypoint(fixture.root, ['batch'], { stdin: tableToIPC(input, 'stream') });
    assert.is(run.code, 0, run.stderr);
    const output = tableFromIPC(run.stdout);
    assert.equal(Array.from(output.getChild('score')!.toArray() as Float64Array), [4, -3, 21]);
    assert.equal([...output.getChild('greeting')!], ['hi ann', 'hi bo', 'hi cy']);
  } finally {
    fixture.cleanup();
  }
});

test('batch: a bad batch writes one JSON error line with its index and exits 1', async () => {
  const fixture = makeRoot('frame');
  try {
    const good = new Table({ a: vectorFromArray([1], new Float64()), name: vectorFromArray(['x'], new Utf8()) });
    // Batch 1 carries a null: tensors cannot hold one, so the batch is refused by name and index.
    const withNull = new Table({ a: vectorFromArray([2, null], new Float64()), name: vectorFromArray(['y', 'z'], new Utf8()) });
    const stream = tableToIPC(new Table([...good.batches, ...withNull.batches]), 'stream');
    const run = await runEntrypoint(fixture.root, ['batch'], { stdin: stream });
    assert.is(run.code, 1);
    const line = JSON.parse(run.stderr.trim().split('\n').at(-1)!);
    assert.equal(line, { error: "input column 'a': has 1 null value(s); tensors cannot hold nulls", batch: 1, tensor: 'a' });
    // What came before the bad batch was written.
    assert.equal([...tableFromIPC(run.stdout).getChild('greeting')!], ['hi x']);

    const wrongType = new Table({ a: vectorFromArray([1], new Float64()), name: vectorFromArray([1], new Uint8()) });
    const typed = await runEntrypoint(fixture.root, ['batch'], { stdin: tableToIPC(wrongType, 'stream') });
    assert.is(typed.code, 1);
    assert.match(typed.stderr, /"error":"input column 'name': expected Utf8 for BYTES \[-1\], got Uint8","batch":0,"tensor":"name"/);

    const garbage = await runEntrypoint(fixture.root, ['batch'], { stdin: 'definitely not arrow' });
    assert.is(garbage.code, 1);
    assert.match(garbage.stderr, /"batch":0/);
  } finally {
    fixture.cleanup();
  }
});

test.run();
