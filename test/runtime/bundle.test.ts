import { spawn } from 'node:child_process';
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import {
  Field, FixedSizeList, RecordBatch, Schema, Struct, Table, Uint8, Utf8, makeData, tableFromIPC, tableToIPC, vectorFromArray,
} from 'apache-arrow';
import { build } from 'esbuild';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { runtimeBundleOptions } from '@pyml/runtime';
import { makeRoot } from './fixtures.ts';
import { v2Client } from './v2-client.ts';

test('the runtime bundles into one ESM file that serves on its own (as /opt/pyml/runtime/entrypoint.mjs)', async () => {
  const fixture = makeRoot('affine');
  try {
    // Lay the bundle out where the image puts it, so the default root (dirname of runtime/) is the fixture.
    mkdirSync(join(fixture.root, 'runtime'));
    const outfile = join(fixture.root, 'runtime/entrypoint.mjs');
    await build(runtimeBundleOptions(outfile));
    const socket = join(fixture.root, 'm.sock');
    const started = Date.now();
    const env = { ...process.env };
    delete env.PYML_ROOT;
    const child = spawn(process.execPath, [outfile, 'serve', '--socket', socket], { env, stdio: ['ignore', 'pipe', 'pipe'] });
    const exited = new Promise<number | null>((r) => child.on('exit', r));
    let stderr = '';
    child.stderr.on('data', (c: Buffer) => { stderr += c.toString(); });
    const ready = await new Promise<{ ready: boolean }>((resolve, reject) => {
      let out = '';
      child.stdout.on('data', (c: Buffer) => {
        out += c.toString();
        if (out.includes('\n')) resolve(JSON.parse(out.split('\n')[0]));
      });
      void exited.then((code) => reject(new Error(`bundle exited ${code}: ${stderr}`)));
    });
    assert.is(ready.ready, true);
    console.log(`    bundled runtime ready in ${Date.now() - started} ms`);
    const client = v2Client(socket);
    const res = await client.call('ModelInfer', {
      model_name: 'affine',
      inputs: [
        { name: 'x', datatype: 'FP32', shape: [1, 4], contents: { fp32_contents: [1, 2, 3, 4] } },
        { name: 'n', datatype: 'INT64', shape: [1], contents: { int64_contents: ['4'] } },
      ],
    });
    assert.equal(res.outputs[1].contents.int64_contents, ['12']);
    client.close();
    child.kill('SIGTERM');
    assert.is(await exited, 0);
  } finally {
    fixture.cleanup();
  }
});

test('the bundled runtime runs batch: Arrow IPC through stdin and stdout', async () => {
  const fixture = makeRoot('grid');
  try {
    mkdirSync(join(fixture.root, 'runtime'));
    const outfile = join(fixture.root, 'runtime/entrypoint.mjs');
    await build(runtimeBundleOptions(outfile));
    const img = Uint8Array.from({ length: 12 }, (_, i) => i);
    const leaf = makeData({ type: new Uint8(), length: 12, nullCount: 0, data: img });
    const inner = makeData({ type: new FixedSizeList(3, new Field('item', new Uint8(), false)), length: 4, nullCount: 0, child: leaf });
    const outerType = new FixedSizeList(2, new Field('item', inner.type, false));
    const imgCol = makeData({ type: outerType, length: 2, nullCount: 0, child: inner });
    const tag = vectorFromArray(['a', 'b'], new Utf8()).data[0];
    const fields = [new Field('img', outerType, false), new Field('tag', new Utf8(), false)];
    const batch = new RecordBatch(new Schema(fields), makeData({ type: new Struct(fields), length: 2, nullCount: 0, children: [imgCol, tag] }));
    const env = { ...process.env };
    delete env.PYML_ROOT;
    const child = spawn(process.execPath, [outfile, 'batch'], { env, stdio: ['pipe', 'pipe', 'pipe'] });
    const out: Buffer[] = [];
    let stderr = '';
    child.stdout.on('data', (c: Buffer) => out.push(c));
    child.stderr.on('data', (c: Buffer) => { stderr += c.toString(); });
    const code = new Promise<number | null>((r) => child.on('close', r));
    child.stdin.end(tableToIPC(new Table([batch]), 'stream'));
    assert.is(await code, 0, stderr);
    const result = tableFromIPC(Buffer.concat(out));
    assert.equal([...result.getChild('label')!], ['A✓', 'B✓']);
    assert.equal(Array.from(result.getChild('total')!.toArray() as Float64Array), [(0 + 1 + 2) / 7 + (3 + 4 + 5) / 7, (6 + 7 + 8) / 7 + (9 + 10 + 11) / 7]);
  } finally {
    fixture.cleanup();
  }
});

test.run();
