import { existsSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { deflateSync, gzipSync } from 'node:zlib';
import { status } from '@grpc/grpc-js';
import type * as grpc from '@grpc/grpc-js';
import { parseReference } from '@pyml/registry/reference';
import { NumberRun, parseJsonBytes } from '../../packages/runtime/src/oip/json-parse.ts';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { tempDir } from '../helpers/project.ts';
import { type Served, buildImages, startServe } from '../serve/fixtures.ts';
import { closeRestAgent, grpcFrame, pool, rawGrpcClient, rawHttp, rawHttp2Call, rawUnary, rest, rssMb } from './fuzz-clients.ts';
import { FLOWER, VALID_REST, frameCase, grpcCase, restCase, validInfer } from './fuzz-mutations.ts';
import { fp32, inferRequest } from './fuzz-protobuf.ts';
import { Random, fuzzSeed } from './fuzz-random.ts';

/**
 * Bad requests against a real `pyml serve` of the iris image and against its model process's own socket: targeted
 * cases for each finding of the security review, then a seeded fuzz run of mutated REST bodies and gRPC messages.
 * Every bad request must get a 4xx / INVALID_ARGUMENT-like answer with a message, quickly: never a 5xx, INTERNAL,
 * UNKNOWN or a hang, and afterwards both processes still answer correctly, within a bounded memory.
 * PYML_FUZZ_SEED=N replays a run (the seed is printed).
 */

const DEADLINE_MS = 3000;
const LIMIT = 1 << 20;
/** The model server's bound on a request arriving when its caller set no deadline. */
const MODEL_RECEIVE_MS = 2000;
const REST_CASES = 1200;
const GRPC_CASES_EACH = 400;
/** Hand-framed HTTP/2 calls (compression, framing), each sent to the service and to the model's socket. */
const FRAME_CASES = 150;
/** Growth of RSS a fuzz run may leave behind, per process (measured: well under half of this). */
const RSS_GROWTH_BOUND_MB = 120;

const seed = fuzzSeed();
console.log(`fuzz seed ${seed} (PYML_FUZZ_SEED=${seed} replays this run)`);

let built: Awaited<ReturnType<typeof buildImages>>;
let served: Served;
let tmp: string;
let front: grpc.Client;
let model: grpc.Client;
let modelPid: number;
let expectedRest: unknown;
let expectedGrpc: Buffer;
const rss = { serve: 0, model: 0 };

const infer = '/v2/models/iris/infer';
const base = () => served.ready.http;

async function validAnswersMatch(): Promise<void> {
  const r = await rest(base(), 'POST', infer, Buffer.from(JSON.stringify(VALID_REST)));
  assert.is(r.status, 200, r.text);
  assert.equal(JSON.parse(r.text), expectedRest);
  for (const client of [front, model]) {
    const g = await rawUnary(client, 'ModelInfer', inferRequest({ model: 'iris', inputs: validInfer() }), 10_000);
    assert.is(g.code, status.OK, g.details);
    assert.ok(g.response!.equals(expectedGrpc), 'the same answer as before');
  }
}

test.before(async () => {
  built = await buildImages(['iris']);
  tmp = await tempDir('pyml-fuzz-tmp-');
  served = await startServe([built.images.iris, '--deadline-ms', String(DEADLINE_MS), '--max-concurrency', '8', '--max-message-bytes', String(LIMIT)],
    { TMPDIR: tmp, PYML_RECEIVE_TIMEOUT_MS: String(MODEL_RECEIVE_MS) });
  modelPid = served.ready.models[0].pid!;
  front = rawGrpcClient(served.ready.grpc);
  model = rawGrpcClient(join(served.ready.socketDir, 'iris.sock'));
  const r = await rest(base(), 'POST', infer, Buffer.from(JSON.stringify(VALID_REST)));
  assert.is(r.status, 200, r.text);
  expectedRest = JSON.parse(r.text);
  const g = await rawUnary(model, 'ModelInfer', inferRequest({ model: 'iris', inputs: validInfer() }), 10_000);
  assert.is(g.code, status.OK, g.details);
  expectedGrpc = g.response!;
  await validAnswersMatch();
  rss.serve = rssMb(served.ready.pid);
  rss.model = rssMb(modelPid);
});

test.after(async () => {
  front?.close();
  model?.close();
  closeRestAgent();
  if (served) assert.is(await served.stop(), 0);
  await built?.cleanup();
});

test('a non-ASCII tensor name is answered at once with INVALID_ARGUMENT naming it, by the model and through the service', async () => {
  const request = inferRequest({ model: 'iris', inputs: [{ ...validInfer()[0], name: 'entrée' }] });
  for (const client of [model, front]) {
    const g = await rawUnary(client, 'ModelInfer', request, 10_000);
    assert.is(g.code, status.INVALID_ARGUMENT, g.details);
    assert.ok(g.ms < 1000, `answered after ${g.ms} ms`);
    assert.match(g.details, /unknown input 'entrée'/);
    assert.is(decodeURIComponent(String(g.metadata!.get('pyml-tensor')[0])), 'entrée');
  }
  // As many at once as --max-concurrency: none holds a slot, and the next valid request is served.
  const body = Buffer.from(JSON.stringify({ inputs: [{ ...VALID_REST.inputs[0], name: '名前' }] }));
  const answers = await Promise.all(Array.from({ length: 8 }, () => rest(base(), 'POST', infer, body)));
  for (const a of answers) {
    assert.is(a.status, 400, a.text);
    assert.match(JSON.parse(a.text).error, /unknown input '名前'/);
    assert.ok(a.ms < 1000, `answered after ${a.ms} ms`);
  }
  await validAnswersMatch();
});

test('a malformed percent-encoding in the URL path is a 400 naming it', async () => {
  for (const path of ['/v2/models/%E0%A4%A/infer', '/v2/models/iris/versions/%zz/ready', '/v2/models/%']) {
    const r = await rest(base(), path.endsWith('infer') ? 'POST' : 'GET', path, path.endsWith('infer') ? Buffer.from(JSON.stringify(VALID_REST)) : undefined);
    assert.is(r.status, 400, `${path}: ${r.text}`);
    assert.match(JSON.parse(r.text).error, /malformed percent-encoding/);
  }
});

test('data nested 100,000 deep is a 400 before it is parsed', async () => {
  const body = JSON.stringify(VALID_REST).replace(JSON.stringify(FLOWER), `${'['.repeat(100_000)}1${']'.repeat(100_000)}`);
  const r = await rest(base(), 'POST', infer, Buffer.from(body));
  assert.is(r.status, 400, r.text);
  assert.match(JSON.parse(r.text).error, /nested more than 64 levels deep/);
});

test('"datatype" that is not a string, and an "id" that is not a string, are 400s', async () => {
  const wrongType = await rest(base(), 'POST', infer, Buffer.from(JSON.stringify({ inputs: [{ ...VALID_REST.inputs[0], datatype: ['FP32'] }] })));
  assert.is(wrongType.status, 400, wrongType.text);
  assert.match(JSON.parse(wrongType.text).error, /"datatype" must be a string, got an array/);
  const objectId = await rest(base(), 'POST', infer, Buffer.from(JSON.stringify({ ...VALID_REST, id: { a: 1 } })));
  assert.is(objectId.status, 400, objectId.text);
  assert.match(JSON.parse(objectId.text).error, /"id" must be a string, got object/);
});

test('corrupt protobuf is INVALID_ARGUMENT at the service as at the model socket, for every method', async () => {
  // Field 1 says 16 bytes follow; one does.
  const corrupt = Buffer.from([0x0a, 0x10, 0x41]);
  for (const method of ['ModelInfer', 'ModelReady', 'ModelMetadata', 'Check']) {
    for (const [where, client] of [['service', front], ['model', model]] as const) {
      const g = await rawUnary(client, method, corrupt, 10_000);
      assert.is(g.code, status.INVALID_ARGUMENT, `${method} at the ${where}: ${g.code} ${g.details}`);
      assert.ok(g.details.length > 0);
    }
  }
});

test('a declared shape far past the message limit is refused before anything is made for it', async () => {
  const r = await rest(base(), 'POST', infer, Buffer.from(JSON.stringify({ inputs: [{ ...VALID_REST.inputs[0], shape: [2 ** 40, 4] }] })));
  assert.is(r.status, 400, r.text);
  assert.match(JSON.parse(r.text).error, /over the limit of 1048576 bytes/);
  const g = await rawUnary(front, 'ModelInfer', inferRequest({ model: 'iris', inputs: [{ name: 'input', datatype: 'FP32', shape: [2 ** 40, 4] }], raw: [fp32(FLOWER)] }), 10_000);
  assert.is(g.code, status.INVALID_ARGUMENT, g.details);
});

test('a gzip bomb is RESOURCE_EXHAUSTED at once, without the service growing; bad gzip is INVALID_ARGUMENT; good gzip works', async () => {
  const bomb = gzipSync(Buffer.alloc(64 << 20));
  const before = rssMb(served.ready.pid);
  const path = '/inference.GRPCInferenceService/ModelInfer';
  const headers = { 'grpc-encoding': 'gzip', 'grpc-timeout': '10S' };
  // The event loop keeps turning while the bomb is inflated (off-thread): a REST health check is answered meanwhile.
  const [answer, live] = await Promise.all([
    rawHttp2Call(served.ready.grpc, path, { headers, data: grpcFrame(bomb, true), endStream: true, giveUpMs: 10_000 }),
    rest(base(), 'GET', '/v2/health/live'),
  ]);
  assert.is(answer.grpcStatus, status.RESOURCE_EXHAUSTED, answer.grpcMessage);
  assert.match(answer.grpcMessage!, /decompresses to more than the limit of 1048576 bytes/);
  assert.ok(answer.ms < 2000, `answered after ${answer.ms} ms`);
  assert.is(live.status, 200);
  const grown = rssMb(served.ready.pid) - before;
  assert.ok(grown < 40, `the service grew by ${grown.toFixed(1)} MB for a ${bomb.length}-byte bomb`);
  const bad = await rawHttp2Call(served.ready.grpc, path, { headers, data: grpcFrame(Buffer.from('not gzip at all'), true), endStream: true, giveUpMs: 10_000 });
  assert.is(bad.grpcStatus, status.INVALID_ARGUMENT, bad.grpcMessage);
  const good = await rawHttp2Call(served.ready.grpc, path, { headers, data: grpcFrame(gzipSync(inferRequest({ model: 'iris', inputs: validInfer() })), true), endStream: true, giveUpMs: 10_000 });
  assert.is(good.grpcStatus, status.OK, good.grpcMessage);
});

test('straight to the model socket: corrupt gzip is INVALID_ARGUMENT naming it, an unknown encoding UNIMPLEMENTED, the flag without an encoding INVALID_ARGUMENT, a bomb RESOURCE_EXHAUSTED, good gzip and deflate work; a good request is answered after each', async () => {
  const socket = join(served.ready.socketDir, 'iris.sock');
  const path = '/inference.GRPCInferenceService/ModelInfer';
  const request = inferRequest({ model: 'iris', inputs: validInfer() });
  const cases: { label: string; headers: Record<string, string>; data: Buffer; code: number; message?: RegExp }[] = [
    { label: 'corrupt gzip', headers: { 'grpc-encoding': 'gzip' }, data: grpcFrame(Buffer.from('not gzip at all'), true), code: status.INVALID_ARGUMENT, message: /request to \/inference\.GRPCInferenceService\/ModelInfer is not valid gzip data: incorrect header check/ },
    { label: 'truncated gzip', headers: { 'grpc-encoding': 'gzip' }, data: grpcFrame(gzipSync(request).subarray(0, 20), true), code: status.INVALID_ARGUMENT, message: /is not valid gzip data: unexpected end of file/ },
    { label: 'corrupt deflate', headers: { 'grpc-encoding': 'deflate' }, data: grpcFrame(Buffer.from('not deflate'), true), code: status.INVALID_ARGUMENT, message: /is not valid deflate data/ },
    { label: 'gzip of corrupt protobuf', headers: { 'grpc-encoding': 'gzip' }, data: grpcFrame(gzipSync(Buffer.from([0x0a, 0x10, 0x41])), true), code: status.INVALID_ARGUMENT },
    { label: 'unknown encoding', headers: { 'grpc-encoding': 'snappy' }, data: grpcFrame(gzipSync(request), true), code: status.UNIMPLEMENTED, message: /compressed with 'snappy'; this side accepts identity, gzip and deflate/ },
    { label: 'compressed flag without grpc-encoding', headers: {}, data: grpcFrame(gzipSync(request), true), code: status.INVALID_ARGUMENT, message: /compressed flag set but no grpc-encoding/ },
    { label: 'compressed flag with identity', headers: { 'grpc-encoding': 'identity' }, data: grpcFrame(gzipSync(request), true), code: status.INVALID_ARGUMENT, message: /compressed flag set but grpc-encoding 'identity'/ },
    { label: 'gzip bomb', headers: { 'grpc-encoding': 'gzip' }, data: grpcFrame(gzipSync(Buffer.alloc(64 << 20)), true), code: status.RESOURCE_EXHAUSTED, message: /decompresses to more than the limit of 1048576 bytes/ },
    { label: 'message over the limit', headers: {}, data: grpcFrame(Buffer.alloc(LIMIT + 1)).subarray(0, 64), code: status.RESOURCE_EXHAUSTED, message: /message of 1048577 bytes is larger than the limit of 1048576 bytes/ },
    { label: 'good gzip', headers: { 'grpc-encoding': 'gzip' }, data: grpcFrame(gzipSync(request), true), code: status.OK },
    { label: 'good deflate', headers: { 'grpc-encoding': 'deflate' }, data: grpcFrame(deflateSync(request), true), code: status.OK },
  ];
  for (const c of cases) {
    const answer = await rawHttp2Call(socket, path, { headers: { ...c.headers, 'grpc-timeout': '10S' }, data: c.data, endStream: true, giveUpMs: 10_000 });
    assert.is(answer.grpcStatus, c.code, `${c.label}: ${answer.grpcStatus} ${answer.grpcMessage}`);
    if (c.message) assert.match(answer.grpcMessage!, c.message, c.label);
    if (c.code !== status.OK) assert.ok(answer.grpcMessage, `${c.label}: a message says what is wrong`);
    assert.ok(answer.ms < 2000, `${c.label}: answered after ${answer.ms} ms`);
    const g = await rawUnary(model, 'ModelInfer', request, 10_000);
    assert.is(g.code, status.OK, `a good request after ${c.label}: ${g.details}`);
    assert.ok(g.response!.equals(expectedGrpc), `the same answer after ${c.label}`);
  }
});

test('a gRPC request stream that never ends gets DEADLINE_EXCEEDED: the caller\'s deadline, else the service\'s or model\'s bound', async () => {
  const path = '/inference.GRPCInferenceService/ModelInfer';
  const socket = join(served.ready.socketDir, 'iris.sock');
  const partial = grpcFrame(inferRequest({ model: 'iris', inputs: validInfer() })).subarray(0, 20);
  const [own, capped, modelOwn, modelCapped] = await Promise.all([
    rawHttp2Call(served.ready.grpc, path, { headers: { 'grpc-timeout': '500m' }, data: partial, endStream: false, giveUpMs: 10_000 }),
    rawHttp2Call(served.ready.grpc, path, { data: partial, endStream: false, giveUpMs: 10_000 }),
    rawHttp2Call(socket, path, { headers: { 'grpc-timeout': '500m' }, data: partial, endStream: false, giveUpMs: 10_000 }),
    rawHttp2Call(socket, path, { data: partial, endStream: false, giveUpMs: 10_000 }),
  ]);
  for (const [what, answer, after] of [['service, caller deadline', own, 500], ['service, --deadline-ms', capped, DEADLINE_MS],
    ['model, caller deadline', modelOwn, 500], ['model, PYML_RECEIVE_TIMEOUT_MS', modelCapped, MODEL_RECEIVE_MS]] as const) {
    assert.is(answer.grpcStatus, status.DEADLINE_EXCEEDED, `${what}: ${answer.grpcStatus} ${answer.grpcMessage}`);
    assert.ok(answer.ms >= after - 100 && answer.ms < after + 1500, `${what}: after ${answer.ms} ms`);
  }
});

test('a body trickled a byte at a time, and a Content-Length larger than the body, end with 408 and a closed connection', async () => {
  const body = Buffer.from(JSON.stringify(VALID_REST));
  const head = (length: number) => `POST ${infer} HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\nContent-Length: ${length}\r\n\r\n`;
  const [slow, short] = await Promise.all([
    rawHttp(base(), head(body.length), { bytes: body, everyMs: 100 }, 15_000),
    rawHttp(base(), head(body.length + 100) + body.toString(), { bytes: Buffer.alloc(0), everyMs: 0 }, 15_000),
  ]);
  for (const [what, r] of [['trickled body', slow], ['short body', short]] as const) {
    assert.match(r.answer, /^HTTP\/1\.1 408/, `${what}: ${r.answer}`);
    assert.ok(r.closedAfterMs !== undefined && r.closedAfterMs < DEADLINE_MS + 1500, `${what}: closed after ${r.closedAfterMs} ms`);
  }
  await validAnswersMatch();
});

test('a large JSON answer is streamed whole: 5,000 rows give each row the one-flower answer', async () => {
  const rows = 5000;
  const body = Buffer.from(JSON.stringify({ inputs: [{ ...VALID_REST.inputs[0], shape: [rows, 4], data: Array.from({ length: rows }, () => FLOWER) }] }));
  const r = await rest(base(), 'POST', infer, body);
  assert.is(r.status, 200, r.text.slice(0, 200));
  assert.ok(r.text.length > 128 * 1024, `${r.text.length} bytes of JSON`);
  const one = expectedRest as { outputs: { name: string; shape: number[]; data: unknown[] }[] };
  const many = JSON.parse(r.text) as typeof one;
  for (const [i, output] of many.outputs.entries()) {
    const width = one.outputs[i].data.length;
    assert.equal(output.shape, [rows, ...one.outputs[i].shape.slice(1)]);
    assert.is(output.data.length, rows * width);
    for (const at of [0, 1, rows - 1]) assert.equal(output.data.slice(at * width, (at + 1) * width), one.outputs[i].data, `${output.name} row ${at}`);
  }
});

test('a model process leaves no onnxruntime debug log in the temp directory', () => {
  // The model runs with the image's environment (temp dir /tmp); the service with the test's TMPDIR.
  for (const dir of ['/tmp', tmp]) assert.not.ok(existsSync(join(dir, `mat-debug-${modelPid}.log`)), `${dir}/mat-debug-${modelPid}.log`);
  assert.equal(readdirSync(tmp).filter((f) => f.startsWith('mat-debug-')), []);
});

test('credentials written into a registry reference are not echoed in its error', () => {
  for (const ref of ['user:s3cret@registry.example.com/models/iris', 'docker://tok:s3cret@localhost/iris', 'u:pa/s3cret@host:5000/x@y']) {
    let message = '';
    try {
      parseReference(ref);
    } catch (error) {
      message = (error as Error).message;
    }
    assert.match(message, /not an image reference/, ref);
    assert.not.match(message, /s3cret/, message);
    assert.match(message, /\*\*\*@/, message);
  }
});

/** A parsed value with its number runs as plain arrays, as JSON.parse gives them. */
function plain(value: unknown): unknown {
  if (value instanceof NumberRun) {
    const numbers: number[] = [];
    value.forEach((x) => numbers.push(x));
    return numbers;
  }
  if (Array.isArray(value)) return value.map(plain);
  if (value && typeof value === 'object') return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, plain(v)]));
  return value;
}

test('the request body parser agrees with JSON.parse on every mutated body it does not refuse for nesting', () => {
  const rnd = new Random(seed ^ 0x5eed);
  const long = Buffer.from(JSON.stringify({ inputs: [{ ...VALID_REST.inputs[0], shape: [300, 4], data: Array.from({ length: 1200 }, (_, i) => (i % 7) * 0.37 - 1) }] }));
  let compared = 0;
  for (let i = 0; i < 3000; i++) {
    const body = i % 10 === 0 ? Buffer.from(long.toString().replace(/,/g, (m) => (rnd.int(400) === 0 ? ',"x",' : m))) : restCase(rnd).body ?? Buffer.alloc(0);
    let expected: string | undefined;
    let actual: string | undefined;
    try {
      expected = JSON.stringify(JSON.parse(body.toString('utf8')));
    } catch {
      // JSON.parse refuses it: so must the parser.
    }
    try {
      actual = JSON.stringify(plain(parseJsonBytes(body)));
    } catch (error) {
      if (/nested more than 64 levels/.test((error as Error).message)) continue;
      assert.match((error as Error).message, /request body is not JSON/);
    }
    assert.is(actual, expected, `seed ${seed}, body #${i}: ${body.toString('utf8').slice(0, 200)}`);
    compared++;
  }
  assert.ok(compared > 2500, `${compared} compared`);
});

test(`fuzz: ${REST_CASES} mutated REST bodies, ${GRPC_CASES_EACH} gRPC messages and ${FRAME_CASES} hand-framed calls each to the service and to the model socket`, async () => {
  const rnd = new Random(seed);
  const failures: string[] = [];
  const restCases = Array.from({ length: REST_CASES }, () => restCase(rnd));
  const grpcCases = Array.from({ length: GRPC_CASES_EACH * 2 }, (_, i) => ({ where: i % 2 ? 'model' : 'service', ...grpcCase(rnd, rnd.pick(['iris', ''])) }));
  const started = Date.now();
  const statuses = new Map<number, number>();
  await pool(restCases.length, 4, async (i) => {
    const c = restCases[i];
    try {
      const r = await rest(base(), c.method, c.path, c.body, c.headers);
      statuses.set(r.status, (statuses.get(r.status) ?? 0) + 1);
      const error = r.status >= 400 ? (JSON.parse(r.text) as { error?: unknown }).error : 'ok';
      if (r.status >= 500 || typeof error !== 'string' || !error) failures.push(`REST #${i} ${c.label}: ${r.status} ${r.text.slice(0, 200)}`);
      else if (r.ms > DEADLINE_MS + 1000) failures.push(`REST #${i} ${c.label}: answered after ${r.ms} ms`);
    } catch (error) {
      failures.push(`REST #${i} ${c.label}: ${(error as Error).message}`);
    }
  });
  const codes = new Map<number, number>();
  const refused = [status.INTERNAL, status.UNKNOWN, status.DEADLINE_EXCEEDED, status.UNAVAILABLE, status.CANCELLED];
  await pool(grpcCases.length, 4, async (i) => {
    const c = grpcCases[i];
    const g = await rawUnary(c.where === 'model' ? model : front, c.method, c.bytes, DEADLINE_MS + 2000);
    codes.set(g.code, (codes.get(g.code) ?? 0) + 1);
    if (refused.includes(g.code) || (g.code !== status.OK && !g.details)) failures.push(`gRPC #${i} at the ${c.where} ${c.method} ${c.label}: ${g.code} ${g.details.slice(0, 200)}`);
  });
  const frameCodes = new Map<string, number>();
  const request = inferRequest({ model: 'iris', inputs: validInfer() });
  const frameCases = Array.from({ length: FRAME_CASES }, () => frameCase(rnd, request));
  // Each hand-framed call goes to the service and to the model's own socket: both speak the same gRPC wire.
  const modelSocket = join(served.ready.socketDir, 'iris.sock');
  await pool(frameCases.length * 2, 4, async (n) => {
    const i = n >> 1;
    const c = frameCases[i];
    const where = n % 2 ? 'model' : 'service';
    const a = await rawHttp2Call(where === 'model' ? modelSocket : served.ready.grpc, '/inference.GRPCInferenceService/ModelInfer', { headers: c.headers, data: c.data, endStream: true, giveUpMs: DEADLINE_MS + 2000 });
    const key = a.grpcStatus === undefined ? 'none' : status[a.grpcStatus];
    frameCodes.set(key, (frameCodes.get(key) ?? 0) + 1);
    if (a.grpcStatus === undefined || refused.includes(a.grpcStatus) || (a.grpcStatus !== status.OK && !a.grpcMessage)) failures.push(`frames #${i} at the ${where} ${c.label}: ${a.grpcStatus} ${a.grpcMessage}`);
  });
  console.log(`fuzz: ${frameCases.length * 2} hand-framed gRPC calls (each to the service and the model socket) (${[...frameCodes].map(([s, n]) => `${s}×${n}`).join(' ')})`);
  console.log(`fuzz: ${restCases.length} REST (${[...statuses].map(([s, n]) => `${s}×${n}`).join(' ')}), ${grpcCases.length} gRPC (${[...codes].map(([s, n]) => `${status[s]}×${n}`).join(' ')}) in ${Date.now() - started} ms`);
  assert.equal(failures.slice(0, 15), [], `seed ${seed}: ${failures.length} failures`);
  await validAnswersMatch();
  const grown = { serve: rssMb(served.ready.pid) - rss.serve, model: rssMb(modelPid) - rss.model };
  console.log(`fuzz: RSS grew by ${grown.serve.toFixed(1)} MB (service), ${grown.model.toFixed(1)} MB (model)`);
  assert.ok(grown.serve < RSS_GROWTH_BOUND_MB && grown.model < RSS_GROWTH_BOUND_MB, JSON.stringify(grown));
});

test('after all of that the service drains and stops at once (no call was left unanswered)', async () => {
  const started = Date.now();
  const code = await served.stop();
  served = undefined as unknown as Served;
  assert.is(code, 0);
  assert.ok(Date.now() - started < 5000, `stopped after ${Date.now() - started} ms`);
});

test.run();
