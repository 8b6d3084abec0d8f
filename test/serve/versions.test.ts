import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { pyml } from '../helpers/cli.ts';
import { http, startServe, v2Client, callError, type Served } from './fixtures.ts';
import { buildEchoVersions, echoJson, inferRest, keyedClient, runConcurrently } from './versions-images.ts';
import { compareVersions, parseVersionPolicies } from '../../packages/serve/src/version-policy.ts';
import { parseSplit, pickShare } from '../../packages/serve/src/split.ts';

let built: Awaited<ReturnType<typeof buildEchoVersions>>;
const servers: Served[] = [];

test.before(async () => {
  built = await buildEchoVersions(['1', '2']);
});

test.after(async () => {
  for (const s of servers) await s.stop();
  await built?.cleanup();
});

async function serve(args: string[]): Promise<Served> {
  const served = await startServe(args);
  servers.push(served);
  return served;
}

/** How many answers came from each version. */
function tally(versions: (string | undefined)[]): Record<string, number> {
  const counts: Record<string, number> = {};
  for (const v of versions) counts[String(v)] = (counts[String(v)] ?? 0) + 1;
  return counts;
}

test('version order, policies and splits as parsed', () => {
  assert.equal(['1', '10', '2', '1.10.0', '1.9.2', '1.0.0-rc1', '1.0.0'].sort(compareVersions), ['1', '1.0.0', '1.0.0-rc1', '1.9.2', '1.10.0', '2', '10']);
  assert.equal(parseVersionPolicies(['pinned=3', 'iris:latest']), { all: { kind: 'pinned', version: '3' }, byModel: new Map([['iris', { kind: 'latest' }]]) });
  assert.throws(() => parseVersionPolicies(['newest']), /--version-policy must be latest, pinned=VERSION/);
  assert.equal(parseSplit('iris=1:90,2:10'), { model: 'iris', shares: [{ version: '1', weight: 90 }, { version: '2', weight: 10 }] });
  assert.throws(() => parseSplit('iris=1:90,1:10'), /version '1' is given twice/);
  assert.throws(() => parseSplit('iris=1:0'), /at least one weight/);
  assert.throws(() => parseSplit('iris=1:x'), /VERSION:WEIGHT with an integer weight/);
  // A version not loaded takes no share; the same key always lands on the same version.
  const split = parseSplit('m=1:50,2:50');
  assert.is(pickShare(split, (v) => v === '2'), '2');
  assert.is(pickShare(split, () => false), undefined);
  for (const key of ['a', 'caller-17', 'x'.repeat(300)]) assert.is(pickShare(split, () => true, key), pickShare(split, () => true, key));
});

test('two versions side by side: the highest by default, each by its REST route and gRPC model_version', async () => {
  const served = await serve([built.images['1'], built.images['2']]);
  assert.equal(served.ready.models.map((m) => [m.name, (m as { version?: string }).version, m.state]), [['echo', '2', 'ready'], ['echo', '1', 'ready']]);
  const base = served.ready.http;
  assert.equal(await inferRest(base, '/v2/models/echo/infer', echoJson(1)), { status: 200, version: '2', error: undefined });
  assert.is((await inferRest(base, '/v2/models/echo/versions/1/infer', echoJson(1))).version, '1');
  assert.is((await inferRest(base, '/v2/models/echo/versions/2/infer', echoJson(1))).version, '2');
  const missing = await inferRest(base, '/v2/models/echo/versions/3/infer', echoJson(1));
  assert.is(missing.status, 404);
  assert.match(missing.error!, /model 'echo' version '3' is not served here \(versions: 2, 1\)/);
  const meta = await http(base, '/v2/models/echo/versions/1');
  assert.is(meta.status, 200);
  assert.equal(meta.body.versions, ['1']);
  assert.is((await http(base, '/v2/models/echo/versions/1/ready')).status, 200);

  const client = v2Client(served.ready.grpc);
  try {
    const request = (version: string) => ({ model_name: 'echo', model_version: version, inputs: [{ name: 'x', datatype: 'FP32', shape: [1, 2], contents: { fp32_contents: [1, 0] } }] });
    assert.is((await client.call('ModelInfer', request('1'))).model_version, '1');
    assert.is((await client.call('ModelInfer', request(''))).model_version, '2');
    const error = await callError(client.call('ModelInfer', request('3')));
    assert.is(error.code, 5, 'NOT_FOUND');
    assert.match(error.details, /version '3' is not served here/);
    assert.equal((await client.call('ModelMetadata', { name: 'echo', version: '1' })).versions, ['1']);
    assert.is((await client.call('ModelReady', { name: 'echo', version: '1' })).ready, true);
    assert.is((await client.call('ModelReady', { name: 'echo', version: '3' })).ready, false);
  } finally {
    client.close();
  }
  const metrics = (await http(base, '/metrics')).text;
  assert.match(metrics, /pyml_requests_total\{model="echo",version="1",protocol="http"\} 1\n/);
  assert.match(metrics, /pyml_requests_total\{model="echo",version="2",protocol="grpc"\} 1\n/);
  assert.match(metrics, /pyml_model_ready\{model="echo",version="1"\} 1/);
  assert.match(metrics, /pyml_model_ready\{model="echo",version="2"\} 1/);
});

test('--version-policy pinned=1: unversioned requests go to version 1, named ones where they say', async () => {
  const served = await serve([built.images['1'], built.images['2'], '--version-policy', 'pinned=1']);
  assert.is((await inferRest(served.ready.http, '/v2/models/echo/infer', echoJson(1))).version, '1');
  assert.is((await inferRest(served.ready.http, '/v2/models/echo/versions/2/infer', echoJson(1))).version, '2');
});

test('--split echo=1:90,2:10: 3000 REST and 3000 gRPC requests each within 2% of the split; a routing key sticks; /metrics counts by version', async () => {
  const served = await serve([built.images['1'], built.images['2'], '--split', 'echo=1:90,2:10']);
  const base = served.ready.http;
  const rest = await runConcurrently(3000, 16, () => inferRest(base, '/v2/models/echo/infer', echoJson(1)));
  assert.equal(rest.filter((r) => r.status !== 200), []);
  const restCounts = tally(rest.map((r) => r.version));
  assert.ok(Math.abs(restCounts['1'] / 3000 - 0.9) <= 0.02, `REST: ${JSON.stringify(restCounts)} of 3000, expected 90% ± 2% on version 1`);

  const client = v2Client(served.ready.grpc);
  let grpcCounts: Record<string, number>;
  try {
    const grpc = await runConcurrently(3000, 16, () => client.call('ModelInfer', { model_name: 'echo', inputs: [{ name: 'x', datatype: 'FP32', shape: [1, 2], contents: { fp32_contents: [1, 0] } }] }));
    grpcCounts = tally(grpc.map((r) => r.model_version));
  } finally {
    client.close();
  }
  assert.ok(Math.abs(grpcCounts['1'] / 3000 - 0.9) <= 0.02, `gRPC: ${JSON.stringify(grpcCounts)} of 3000, expected 90% ± 2% on version 1`);

  // The routing key: every call of one caller answered by one version; the callers themselves spread by the split.
  const keys = Array.from({ length: 300 }, (_, i) => `caller-${i}`);
  const byKey = await runConcurrently(keys.length * 3, 16, (i) => inferRest(base, '/v2/models/echo/infer', echoJson(1), { 'pyml-routing-key': keys[i % keys.length] }));
  const seen = new Map<string, Set<string>>();
  byKey.forEach((r, i) => {
    const key = keys[i % keys.length];
    if (!seen.has(key)) seen.set(key, new Set());
    seen.get(key)!.add(r.version!);
  });
  const mixed = [...seen].filter(([, versions]) => versions.size > 1);
  assert.equal(mixed, [], 'each caller saw one version');
  const onOne = [...seen.values()].filter((versions) => versions.has('1')).length / keys.length;
  assert.ok(onOne > 0.82 && onOne < 0.97, `callers on version 1: ${onOne}, expected about 0.9`);

  // The counters agree with what the callers saw, per version and protocol.
  const metrics = (await http(base, '/metrics')).text;
  const counted = (version: string, protocol: string) => Number(new RegExp(`pyml_requests_total\\{model="echo",version="${version}",protocol="${protocol}"\\} (\\d+)`).exec(metrics)?.[1]);
  const restByVersion = tally([...rest, ...byKey].map((r) => r.version));
  assert.is(counted('1', 'http'), restByVersion['1']);
  assert.is(counted('2', 'http'), restByVersion['2']);
  assert.is(counted('1', 'grpc'), grpcCounts['1']);
  assert.is(counted('2', 'grpc'), grpcCounts['2']);
});

test('a split where the front merges calls (--max-batch-size 4): a routing key still sticks, over REST and gRPC', async () => {
  const served = await serve([built.images['1'], built.images['2'], '--split', 'echo=1:50,2:50', '--max-batch-size', '4']);
  const keys = Array.from({ length: 60 }, (_, i) => `merged-${i}`);
  const rest = await runConcurrently(keys.length * 3, 12, (i) => inferRest(served.ready.http, '/v2/models/echo/infer', echoJson(1), { 'pyml-routing-key': keys[i % keys.length] }));
  const versions = new Map<string, Set<string>>();
  rest.forEach((r, i) => {
    assert.is(r.status, 200);
    const key = keys[i % keys.length];
    versions.set(key, (versions.get(key) ?? new Set()).add(r.version!));
  });
  assert.equal([...versions].filter(([, v]) => v.size > 1), [], 'each caller saw one version');
  assert.ok([...versions.values()].some((v) => v.has('1')) && [...versions.values()].some((v) => v.has('2')), 'callers spread over both versions');
  // gRPC metadata: the same key lands where REST's did.
  const keyed = keyedClient(served.ready.grpc);
  try {
    for (const key of keys.slice(0, 20)) assert.is(await keyed.infer(key), [...versions.get(key)!][0], `key ${key}`);
  } finally {
    keyed.close();
  }
});

test('refused at start: a split or pin naming a version not served, one version twice', async () => {
  const split = await pyml(['serve', built.images['1'], built.images['2'], '--split', 'echo=1:50,3:50', '--http', '127.0.0.1:0', '--grpc', '127.0.0.1:0']);
  assert.is.not(split.code, 0);
  assert.match(split.stderr, /--split echo: version '3' is not served \(versions: 2, 1\)/);
  const pinned = await pyml(['serve', built.images['1'], '--version-policy', 'pinned=7', '--http', '127.0.0.1:0', '--grpc', '127.0.0.1:0']);
  assert.is.not(pinned.code, 0);
  assert.match(pinned.stderr, /pins model 'echo' to version '7', which is not served/);
  const twice = await pyml(['serve', built.images['1'], `${built.images['1']}.tar`, '--http', '127.0.0.1:0', '--grpc', '127.0.0.1:0']);
  assert.is.not(twice.code, 0);
  assert.match(twice.stderr, /are both version '1' of model 'echo'; each version can be served once/);
  const badSplit = await pyml(['serve', built.images['1'], '--split', 'echo=1', '--http', '127.0.0.1:0']);
  assert.is(badSplit.code, 2);
  assert.match(badSplit.stderr, /--split echo: each share must be VERSION:WEIGHT/);
});

test.run();
