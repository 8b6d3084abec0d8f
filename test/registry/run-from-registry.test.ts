import assert from 'node:assert/strict';
import { readFile, readdir } from 'node:fs/promises';
import path from 'node:path';
import { test } from 'uvu';
import { DuckDBInstance } from '@duckdb/node-api';
import { REPO, parseJson, pyml } from '../helpers/cli.ts';
import { startRegistry, type RegistryServer } from '../helpers/registry-server.ts';
import { tempDir } from '../helpers/project.ts';
import { requireTool } from '../helpers/tools.ts';
import { http, startServe } from '../serve/fixtures.ts';
import { buildIris, type BuiltImage } from './fixtures.ts';

// serve, predict and batch take a registry image as they take a layout: pulled into the cache, then run.

let registry: RegistryServer;
let iris: BuiltImage;
let ref: string;
const SAMPLE = path.join(REPO, 'examples/onnx-iris/sample.json');

test.before(async () => {
  requireTool('docker-registry');
  registry = await startRegistry();
  iris = await buildIris();
  ref = `${registry.host}/models/iris:1.0.0`;
  const pushed = await pyml(['push', iris.layout, ref, '--json']);
  assert.equal(pushed.code, 0, pushed.stderr);
});
test.after(async () => { await registry?.stop(); });

test('predict REF from a registry: the same outputs as from the layout; a second run downloads no blob again', async () => {
  const local = await pyml(['predict', iris.layout, '--input', SAMPLE, '--json']);
  assert.equal(local.code, 0, local.stderr);
  // A cache that has never seen the image: every blob comes from the registry.
  const cache = await tempDir('pyml-pull-cache-');
  const first = await pyml(['predict', ref, '--input', SAMPLE], { env: { PYML_CACHE_DIR: cache } });
  assert.equal(first.code, 0, first.stderr);
  assert.deepEqual(JSON.parse(first.stdout).outputs, parseJson<{ outputs: unknown }>(local).outputs);
  const blobs = iris.parts.length + 1; // the layers and the config
  assert.match(first.stderr, new RegExp(`pulled ${ref} \\(${iris.digest}\\): ${blobs} blobs downloaded, 0 from the cache`));

  registry.resetRequests();
  const second = await pyml(['predict', ref, '--input', SAMPLE], { env: { PYML_CACHE_DIR: cache } });
  assert.equal(second.code, 0, second.stderr);
  assert.equal(second.stdout, first.stdout);
  assert.match(second.stderr, new RegExp(`0 blobs downloaded, ${blobs} from the cache`));
  // The tag was asked for again (it may have moved); no blob was.
  const asked = registry.requests().filter((r) => r.method === 'GET');
  assert.ok(asked.some((r) => r.path.includes('/manifests/1.0.0')), JSON.stringify(asked));
  assert.equal(asked.filter((r) => r.path.includes('/blobs/')).length, 0, JSON.stringify(asked));
  // One layout per manifest digest in the cache, however often it is pulled.
  assert.deepEqual((await readdir(path.join(cache, 'pulled'))).filter((n) => !n.startsWith('.')), [iris.digest.slice('sha256:'.length)]);
});

test('serve REF from a registry answers V2 infer; batch REF writes one row per input row, and its Spark job names REF', async () => {
  const served = await startServe([ref]);
  try {
    const r = await http(served.ready.http!, '/v2/models/iris/infer', { inputs: [{ name: 'input', datatype: 'FP32', shape: [1, 4], data: [5.1, 3.5, 1.4, 0.2] }] });
    assert.equal(r.status, 200, r.text);
    assert.deepEqual((r.body.outputs as { name: string; data: number[] }[]).find((o) => o.name === 'label')!.data, [0]);
  } finally {
    await served.stop();
  }

  const db = path.join(await tempDir('pyml-pull-batch-'), 'out.duckdb');
  const query = "SELECT id, sepal_length::FLOAT AS sepal_length, sepal_width::FLOAT AS sepal_width, petal_length::FLOAT AS petal_length, petal_width::FLOAT AS petal_width FROM read_csv('examples/onnx-iris/sample.csv')";
  const batch = await pyml(['batch', ref, '--query', query, '--into', 'predictions', '--db', db, '--keep', 'id', '--workers', '1', '--json']);
  assert.equal(batch.code, 0, batch.stderr);
  assert.equal(parseJson<{ rows: number }>(batch).rows > 0, true);
  const instance = await DuckDBInstance.create(db);
  const c = await instance.connect();
  const [[written, input]] = (await c.runAndReadAll(`SELECT (SELECT count(*) FROM predictions), (SELECT count(*) FROM read_csv('${path.join(REPO, 'examples/onnx-iris/sample.csv')}'))`)).getRows();
  assert.equal(written, input);
  c.closeSync();
  instance.closeSync();

  // A Spark job for a registry image names the registry image: that is what its executors run.
  const job = path.join(path.dirname(db), 'job.py');
  const emitted = await pyml(['batch', ref, '--query', query, '--into', 'predictions', '--keep', 'id', '--emit-spark', job, '--json']);
  assert.equal(emitted.code, 0, emitted.stderr);
  const text = await readFile(job, 'utf8');
  assert.ok(text.includes(`pyml batch ${ref} --emit-spark`), text.slice(0, 400));
  assert.ok(text.includes(iris.digest), 'the job names the manifest digest it was made for');
});

test('pyml cache du counts a pulled image; prune removes it, and the next run pulls it again from the blobs kept', async () => {
  const cache = await tempDir('pyml-pull-cache-');
  const env = { PYML_CACHE_DIR: cache };
  assert.equal((await pyml(['predict', ref, '--input', SAMPLE], { env })).code, 0);
  const du = parseJson<{ pulled: { images: number; bytes: number } }>(await pyml(['cache', 'du', '--json'], { env }));
  assert.equal(du.pulled.images, 1);
  const pruned = await pyml(['cache', 'prune', '--json'], { env });
  assert.equal(pruned.code, 0, pruned.stderr);
  const removed = parseJson<{ removed: { kind: string; name: string }[] }>(pruned).removed;
  assert.deepEqual(removed.map((r) => r.kind).sort(), ['pulled', 'unpacked']);
  assert.ok(removed.some((r) => r.kind === 'pulled' && r.name === iris.digest.slice('sha256:'.length)), JSON.stringify(removed));
  assert.deepEqual(await readdir(path.join(cache, 'pulled')), []);
  const again = await pyml(['predict', ref, '--input', SAMPLE], { env });
  assert.equal(again.code, 0, again.stderr);
  assert.match(again.stderr, /0 blobs downloaded/);
});

test('a tag the registry does not have: exit 1, the error names the ref', async () => {
  const missing = `${registry.host}/models/iris:no-such-tag`;
  const r = await pyml(['predict', missing, '--input', SAMPLE, '--json']);
  assert.equal(r.code, 1, r.stderr);
  const out = parseJson<{ ok: boolean; error: { message: string; exitCode: number } }>(r);
  assert.equal(out.ok, false);
  assert.equal(out.error.exitCode, 1);
  assert.match(out.error.message, new RegExp(`${missing} does not exist`));
});

test.run();
