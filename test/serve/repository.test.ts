import { cp, mkdir, rename, rm } from 'node:fs/promises';
import { join } from 'node:path';
import * as grpc from '@grpc/grpc-js';
import * as protoLoader from '@grpc/proto-loader';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { tempDir } from '../helpers/project.ts';
import { http, startServe, v2Client, waitFor, type Msg, type Served } from './fixtures.ts';
import { buildEchoVersions, echoJson, inferRest } from './versions-images.ts';

let built: Awaited<ReturnType<typeof buildEchoVersions>>;
let served: Served | undefined;

test.before(async () => {
  built = await buildEchoVersions(['1', '2'], ['1']);
});

test.after.each(async () => {
  await served?.stop();
  served = undefined;
});

test.after(async () => {
  await built?.cleanup();
});

/** A repository directory holding the given images under the given entry names (layout directories or tarballs). */
async function repository(entries: Record<string, string>): Promise<string> {
  const dir = await tempDir('pyml-repository-');
  await mkdir(dir, { recursive: true });
  for (const [name, from] of Object.entries(entries)) await cp(from, join(dir, name), { recursive: true });
  return dir;
}

const alive = (pid: number) => {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
};

function percentile(values: number[], p: number): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.floor(p * sorted.length))] ?? NaN;
}

interface Sample { at: number; ms: number; status: number | string; version?: string }

/**
 * Callers that keep calling until stopped: `slow` REST and gRPC callers whose requests sleep 200 ms in the model
 * (so calls are in flight whenever a version is retired) and `fast` REST callers (their latency shows the swap's cost).
 */
function load(base: string, grpcAddress: string): { slow: Sample[]; fast: Sample[]; stop(): Promise<void> } {
  const slow: Sample[] = [];
  const fast: Sample[] = [];
  let running = true;
  const client = v2Client(grpcAddress);
  const loop = async (into: Sample[], call: () => Promise<{ status: number | string; version?: string }>) => {
    while (running) {
      const started = performance.now();
      const r = await call().catch((error: Error) => ({ status: `threw: ${error.message}`, version: undefined }));
      into.push({ at: Date.now(), ms: performance.now() - started, status: r.status, version: r.version });
    }
  };
  const rest = (delay: number) => () => inferRest(base, '/v2/models/echo/infer', echoJson(1, delay));
  const grpcCall = () => client.call('ModelInfer', { model_name: 'echo', inputs: [{ name: 'x', datatype: 'FP32', shape: [1, 2], contents: { fp32_contents: [1, 200] } }] })
    .then((r: Msg) => ({ status: 200, version: r.model_version as string }), (e: grpc.ServiceError) => ({ status: `grpc ${e.code}: ${e.details}`, version: undefined }));
  const loops = [
    ...Array.from({ length: 6 }, () => loop(slow, rest(200))),
    ...Array.from({ length: 4 }, () => loop(slow, grpcCall)),
    ...Array.from({ length: 4 }, () => loop(fast, rest(0))),
  ];
  return { slow, fast, stop: async () => { running = false; await Promise.all(loops); client.close(); } };
}

test('under load, version 2 copied in and version 1 removed: 2 takes over at the next poll, 1 drains and stops, no request fails', async () => {
  const dir = await repository({ 'echo-v1': built.images['1'] });
  // No merging in the front: a fast call's latency is then its own, not that of a 200 ms call it was merged with.
  served = await startServe(['--repository', dir, '--poll-s', '1', '--max-batch-size', '1']);
  const v1 = served.ready.models.find((m) => (m as { version?: string }).version === '1');
  assert.ok(v1?.pid, `version 1 is running: ${JSON.stringify(served.ready.models)}`);
  const traffic = load(served.ready.http, served.ready.grpc);
  await new Promise((r) => setTimeout(r, 3000));
  // The swap, as a deploy does it: the new image copied in under a dot name and renamed, the old one removed.
  const swapAt = Date.now();
  await cp(`${built.images['2']}.tar`, join(dir, '.echo-v2.tar'));
  await rename(join(dir, '.echo-v2.tar'), join(dir, 'echo-v2.tar'));
  await rm(join(dir, 'echo-v1'), { recursive: true });
  const takeover = await waitFor('version 2 to answer', () => traffic.fast.some((s) => s.at > swapAt && s.version === '2'), 30_000);
  const drained = await waitFor('version 1 to stop', () => !alive(v1.pid!), 30_000);
  const swapEnd = Date.now();
  await new Promise((r) => setTimeout(r, 1500));
  await traffic.stop();

  const all = [...traffic.slow, ...traffic.fast];
  const failed = all.filter((s) => s.status !== 200);
  assert.equal(failed.slice(0, 5), [], `${failed.length} of ${all.length} requests failed during the swap`);
  assert.ok(all.every((s) => s.version === '1' || s.version === '2'));
  const after = all.filter((s) => s.at > swapEnd);
  assert.ok(after.length > 0 && after.every((s) => s.version === '2'), 'after the swap only version 2 answers');
  assert.ok(traffic.slow.some((s) => s.at > swapAt && s.version === '1'), 'calls in flight on version 1 when it was retired finished there');

  const index = await http(served.ready.http, '/v2/repository/index', {});
  assert.equal(index.body, [{ name: 'echo', version: '2', state: 'READY', reason: '' }]);
  const fastBefore = traffic.fast.filter((s) => s.at < swapAt).map((s) => s.ms);
  const fastDuring = traffic.fast.filter((s) => s.at >= swapAt && s.at <= swapEnd).map((s) => s.ms);
  const slowDuring = traffic.slow.filter((s) => s.at >= swapAt && s.at <= swapEnd).map((s) => s.ms);
  console.log(`  swap under load: ${all.length} requests, ${failed.length} failed; version 2 answered ${takeover} ms after the copy, version 1 stopped ${drained} ms after that`);
  console.log(`  fast REST before: n=${fastBefore.length} p50 ${percentile(fastBefore, 0.5).toFixed(1)} ms p99 ${percentile(fastBefore, 0.99).toFixed(1)} ms; during: n=${fastDuring.length} p50 ${percentile(fastDuring, 0.5).toFixed(1)} ms p99 ${percentile(fastDuring, 0.99).toFixed(1)} ms max ${Math.max(...fastDuring).toFixed(1)} ms`);
  console.log(`  200 ms calls during the swap: n=${slowDuring.length} p50 ${percentile(slowDuring, 0.5).toFixed(1)} ms max ${Math.max(...slowDuring).toFixed(1)} ms`);
});

test('the same version from a new image (a tarball renamed over the old one): swapped in at the next poll, no request fails', async () => {
  const dir = await repository({ 'echo-v1.tar': `${built.images['1']}.tar` });
  served = await startServe(['--repository', dir, '--poll-s', '1', '--max-batch-size', '1']);
  const y = async () => {
    const res = await fetch(`http://${served!.ready.http}/v2/models/echo/infer`, { method: 'POST', body: echoJson(3, 20), headers: { 'content-type': 'application/json' } });
    const body = await res.json() as { model_version: string; outputs: { name: string; data: number[] }[]; error?: string };
    return { status: res.status, version: body.model_version, y: body.outputs?.find((o) => o.name === 'y')?.data[0], error: body.error };
  };
  assert.equal(await y(), { status: 200, version: '1', y: 3, error: undefined });
  const answers: (Awaited<ReturnType<typeof y>> & { started: number; ended: number })[] = [];
  let running = true;
  const callers = Array.from({ length: 4 }, async () => {
    while (running) {
      const started = performance.now();
      answers.push({ ...(await y()), started, ended: performance.now() });
    }
  });
  await cp(`${built.images['1-doubled']}.tar`, join(dir, '.echo-v1.tar.new'));
  await rename(join(dir, '.echo-v1.tar.new'), join(dir, 'echo-v1.tar'));
  await waitFor('the new code to answer', () => answers.some((a) => a.y === 6), 30_000);
  await new Promise((r) => setTimeout(r, 1000));
  running = false;
  await Promise.all(callers);
  assert.equal(answers.filter((a) => a.status !== 200).slice(0, 3), [], `${answers.filter((a) => a.status !== 200).length} of ${answers.length} failed`);
  assert.ok(answers.every((a) => a.version === '1'));
  // Once the new image has answered, every call begun after that goes to it.
  const firstNew = Math.min(...answers.filter((a) => a.y === 6).map((a) => a.ended));
  const late = answers.filter((a) => a.started > firstNew);
  assert.ok(late.length > 0 && late.every((a) => a.y === 6), 'once the new image answers, the old one no longer does');
  assert.match(served.stderr(), /"msg":"model version replaced".*"version":"1"/);
});

const repositoryProto = protoLoader.loadSync(join(import.meta.dirname, 'repository.proto'), { keepCase: true, defaults: true });
const RepositoryService = (grpc.loadPackageDefinition(repositoryProto) as unknown as { inference: { model_repository: { ModelRepositoryService: grpc.ServiceClientConstructor } } }).inference.model_repository.ModelRepositoryService;

function repositoryCall(client: grpc.Client, method: string, request: Msg): Promise<Msg> {
  return new Promise((resolve, reject) => {
    (client as unknown as Record<string, (req: Msg, cb: (e: grpc.ServiceError | null, r: Msg) => void) => void>)[method](request, (e, r) => (e ? reject(e) : resolve(r)));
  });
}

test('the repository API over REST and gRPC: index with states, unload (polling leaves it out), load again, errors named', async () => {
  const dir = await repository({ 'echo-v1': built.images['1'], 'echo-v2.tar': `${built.images['2']}.tar` });
  await mkdir(join(dir, 'not-an-image'));
  served = await startServe(['--repository', dir, '--poll-s', '1']);
  const base = served.ready.http;
  const index = await http(base, '/v2/repository/index', '');
  assert.equal(index.body, [
    { name: 'echo', version: '1', state: 'READY', reason: '' },
    { name: 'echo', version: '2', state: 'READY', reason: '' },
    { name: 'not-an-image', version: '', state: 'UNAVAILABLE', reason: `${join(dir, 'not-an-image')}: not an image layout (no index.json)` },
  ]);
  assert.equal((await http(base, '/v2/repository/index', { ready: true })).body.length, 2);
  assert.is((await inferRest(base, '/v2/models/echo/infer', echoJson(1))).version, '2');

  const unload = await http(base, '/v2/repository/models/echo/unload', {});
  assert.equal([unload.status, unload.body], [200, {}]);
  const gone = await inferRest(base, '/v2/models/echo/infer', echoJson(1));
  assert.is(gone.status, 404);
  assert.match(gone.error!, /model 'echo' is not served here/);
  await new Promise((r) => setTimeout(r, 2500));
  assert.is((await inferRest(base, '/v2/models/echo/infer', echoJson(1))).status, 404, 'the poll does not load an unloaded model again');
  assert.equal((await http(base, '/v2/repository/index', {})).body.filter((r: Msg) => r.name === 'echo').map((r: Msg) => [r.version, r.state, r.reason]), [['1', 'UNAVAILABLE', 'unloaded'], ['2', 'UNAVAILABLE', 'unloaded']]);

  const missing = await http(base, '/v2/repository/models/nope/load', {});
  assert.is(missing.status, 404);
  assert.match(missing.body.error, /no image of model 'nope' in the repository .* \(models there: echo\)/);
  assert.is((await http(base, '/v2/repository/index')).status, 405);
  assert.is((await http(base, '/v2/repository/index', '{"ready": "yes"}')).status, 400);

  // gRPC, as KServe's ModelRepositoryService: load, index, unload, load.
  const client = new RepositoryService(served.ready.grpc, grpc.credentials.createInsecure());
  try {
    await repositoryCall(client, 'RepositoryModelLoad', { model_name: 'echo' });
    assert.is((await inferRest(base, '/v2/models/echo/infer', echoJson(1))).version, '2');
    const listed = await repositoryCall(client, 'RepositoryIndex', { ready: true });
    assert.equal(listed.models.map((m: Msg) => [m.name, m.version, m.state]), [['echo', '1', 'READY'], ['echo', '2', 'READY']]);
    const error = await repositoryCall(client, 'RepositoryModelUnload', { model_name: '' }).catch((e: grpc.ServiceError) => e);
    assert.is((error as grpc.ServiceError).code, grpc.status.INVALID_ARGUMENT);
    await repositoryCall(client, 'RepositoryModelUnload', { model_name: 'echo' });
    assert.is((await inferRest(base, '/v2/models/echo/infer', echoJson(1))).status, 404);
    await repositoryCall(client, 'RepositoryModelLoad', { model_name: 'echo' });
    assert.is((await inferRest(base, '/v2/models/echo/versions/1/infer', echoJson(1))).version, '1');
  } finally {
    client.close();
  }
});

test('without --repository the extension answers 404 (REST) and UNIMPLEMENTED (gRPC)', async () => {
  served = await startServe([built.images['1']]);
  const rest = await http(served.ready.http, '/v2/repository/index', {});
  assert.is(rest.status, 404);
  assert.match(rest.body.error, /no model repository \(start pyml serve with --repository DIR\)/);
  const client = new RepositoryService(served.ready.grpc, grpc.credentials.createInsecure());
  try {
    const error = await repositoryCall(client, 'RepositoryIndex', {}).catch((e: grpc.ServiceError) => e);
    assert.is((error as grpc.ServiceError).code, grpc.status.UNIMPLEMENTED);
  } finally {
    client.close();
  }
});

test.run();
