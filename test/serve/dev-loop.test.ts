import { mkdir, rm, symlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { pyml, REPO, parseJson } from '../helpers/cli.ts';
import { editFile, tempDir } from '../helpers/project.ts';
import { type Served, type V2Client, echoRequest, http, startServe, v2Client, waitFor } from './fixtures.ts';

/**
 * The dev loop on a real project: `pyml predict DIR` and `pyml serve DIR --watch` build it through the cache;
 * an edit of its code is rebuilt and swapped in while requests keep coming, none failing; a broken edit leaves the
 * running model serving. The model scales column 0 by FACTOR and sleeps column 1 ms, so calls can be in flight.
 */

const CONFIG = `import { defineConfig } from '@pyml/core';
export default defineConfig({
  name: 'scaler', version: '0.1.0', model: './src/model.ts', kind: 'tensor',
  signature: { inputs: [{ name: 'x', dtype: 'FP32', shape: [-1, 2] }], outputs: [{ name: 'y', dtype: 'FP32', shape: [-1, 2] }] },
  plugins: [],
});
`;

const model = (factor: number) => `import { TensorModel, type InitContext, type Tensors } from '@pyml/contract';
const FACTOR = ${factor};
export default class Scaler extends TensorModel {
  async init(_ctx: InitContext): Promise<void> {}
  async predict({ x }: Tensors): Promise<Tensors> {
    const data = x.data as Float32Array;
    const n = x.shape[0];
    let delay = 0;
    for (let r = 0; r < n; r++) delay = Math.max(delay, data[r * 2 + 1]);
    if (delay > 0) await new Promise((resolve) => setTimeout(resolve, delay));
    const y = Float32Array.from(data);
    for (let r = 0; r < n; r++) y[r * 2] = data[r * 2] * FACTOR;
    return { y: { dtype: 'FP32', shape: [n, 2], data: y } };
  }
}
`;

let dir: string;
let project: string;
let served: Served | undefined;
let client: V2Client | undefined;

test.before(async () => {
  dir = await tempDir('pyml-dev-loop-');
  project = join(dir, 'scaler');
  await mkdir(join(project, 'src'), { recursive: true });
  await symlink(join(REPO, 'node_modules'), join(project, 'node_modules'));
  await writeFile(join(project, 'pyml.config.ts'), CONFIG);
  await writeFile(join(project, 'src/model.ts'), model(1));
  await writeFile(join(dir, 'request.json'), JSON.stringify({ inputs: [{ name: 'x', datatype: 'FP32', shape: [1, 2], data: [3, 0] }] }));
});

test.after(async () => {
  client?.close();
  if (served) await served.stop();
  await rm(dir, { recursive: true, force: true });
});

/** The factor the model answers with now, over REST. */
async function factorNow(): Promise<number> {
  const r = await http(served!.ready.http, '/v2/models/scaler/infer', { inputs: [{ name: 'x', datatype: 'FP32', shape: [1, 2], data: [1, 0] }] });
  if (r.status !== 200) throw new Error(`infer answered ${r.status}: ${r.text}`);
  return (r.body as { outputs: { data: number[] }[] }).outputs[0]!.data[0]!;
}

test('pyml predict DIR builds the project through the cache, then runs it', async () => {
  const r = await pyml(['predict', project, '--input', join(dir, 'request.json'), '--json', '--progress', 'plain']);
  assert.is(r.code, 0, r.stderr);
  assert.equal(parseJson<{ ok: boolean; outputs: { data: number[] }[] }>(r).outputs[0]!.data, [3, 0]);
  // --json keeps the build's progress off stdout; the image is the project's own layout.
  const again = await pyml(['predict', project, '--input', join(dir, 'request.json'), '--progress', 'plain']);
  assert.is(again.code, 0, again.stderr);
  assert.match(again.stderr, /building .*scaler/);
  assert.match(again.stderr, /built scaler:0\.1\.0/);
});

test('pyml serve DIR without --watch builds and serves; --watch on an image is a usage error', async () => {
  const r = await pyml(['serve', join(project, '.pyml', 'image'), '--watch', '--grpc', '127.0.0.1:0', '--http', '127.0.0.1:0']);
  assert.is(r.code, 2, r.stderr);
  assert.match(r.stderr, /--watch rebuilds model projects/);
});

test('serve --watch: an edit is swapped in while calls are in flight, none fails; a broken edit keeps the model', async () => {
  served = await startServe([project, '--watch']);
  client = v2Client(served.ready.grpc);
  assert.is(await factorNow(), 1);
  const firstPid = served.ready.models[0]!.pid!;

  // Steady traffic over both protocols, each call held 200 ms in the model so that some are mid-call at the swap.
  let stop = false;
  const failures: string[] = [];
  const factors = new Set<number>();
  let calls = 0;
  const loops = Array.from({ length: 6 }, (_, i) => (async () => {
    while (!stop) {
      try {
        if (i % 2 === 0) {
          const r = await http(served!.ready.http, '/v2/models/scaler/infer', { inputs: [{ name: 'x', datatype: 'FP32', shape: [1, 2], data: [1, 200] }] });
          if (r.status !== 200) failures.push(`REST ${r.status}: ${r.text}`);
          else factors.add((r.body as { outputs: { data: number[] }[] }).outputs[0]!.data[0]!);
        } else {
          const a = await client!.call('ModelInfer', { ...echoRequest([[1, 200]], 'scaler') });
          factors.add(a.outputs[0].contents.fp32_contents[0]);
        }
      } catch (error) {
        failures.push(`gRPC: ${(error as Error).message}`);
      }
      calls++;
    }
  })());

  await new Promise((r) => setTimeout(r, 500));
  await editFile(join(project, 'src/model.ts'), (text) => text.replace('const FACTOR = 1;', 'const FACTOR = 2;'));
  const ms = await waitFor('the edited code to answer', async () => (await factorNow()) === 2, 90_000);
  // Keep the traffic going past the old process's drain.
  await new Promise((r) => setTimeout(r, 1000));
  stop = true;
  await Promise.all(loops);
  assert.equal(failures, [], `${failures.length} of ${calls} calls failed during the swap`);
  assert.equal([...factors].sort(), [1, 2], 'answers came from the old code, then the new');
  assert.ok(calls > 10, `traffic ran (${calls} calls)`);
  assert.match(served.stderr(), /"msg":"model swapped"/);
  assert.match(served.stderr(), /"msg":"serving the new build".*"ms":\d+/);
  // The old process is gone.
  await waitFor('the old model process to exit', () => { try { process.kill(firstPid, 0); return false; } catch { return true; } }, 15_000);
  console.log(`  edit → new code answering: ${ms} ms (polled)`);

  // A syntax error: the rebuild fails, is logged, and the last good model keeps answering.
  await editFile(join(project, 'src/model.ts'), (text) => text.replace('const FACTOR = 2;', 'const FACTOR = 2 +;'));
  await waitFor('the failed rebuild to be logged', () => /"msg":"rebuild failed; the running model keeps serving"/.test(served!.stderr()), 60_000);
  assert.match(served.stderr(), /rebuild failed[^\n]*model\.ts/);
  assert.is(await factorNow(), 2);
  // Fixed again: the next build is served.
  await editFile(join(project, 'src/model.ts'), (text) => text.replace('const FACTOR = 2 +;', 'const FACTOR = 3;'));
  await waitFor('the fixed code to answer', async () => (await factorNow()) === 3, 90_000);
  assert.is((await http(served.ready.http, '/v2/health/ready')).status, 200);
});

test('serve --watch: a change of serving settings is refused with the reason, the running model stays', async () => {
  await editFile(join(project, 'pyml.config.ts'), (text) => text.replace('  plugins: [],', '  serving: { maxBatchSize: 4 },\n  plugins: [],'));
  await waitFor('the refused swap to be logged', () => /changed its kind, signature or serving settings/.test(served!.stderr()), 60_000);
  assert.is(await factorNow(), 3);
});

test.run();
