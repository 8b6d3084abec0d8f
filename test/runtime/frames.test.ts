import { status } from '@grpc/grpc-js';
import net, { type Socket } from 'node:net';
import { join } from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import {
  type CallFrame, FRAME_HEADER_BYTES, FrameReader, FrameType, RESULT_JSON, RESULT_PROTO, callFrameParts, decodeInferResponse, encodeInferRequest,
  readFailureFrame, writeFrame,
} from '@pyml/runtime/protocol';
import { type Served, makeRoot, startServe } from './fixtures.ts';

/**
 * The model's end of pyml serve's framed protocol, driven by hand over its Unix socket: the real entrypoint with
 * PYML_FRAME_SOCKET, the affine fixture (y = 2x + 0.1, m = 3n), frames written and read with the shared wire code.
 */

const MAX = 64 * 1024;
let fixture: ReturnType<typeof makeRoot>;
let served: Served;
let frames: string;

test.before(async () => {
  fixture = makeRoot('affine');
  frames = join(fixture.root, 'f.sock');
  served = await startServe(fixture.root, { env: { PYML_FRAME_SOCKET: frames, PYML_MAX_MESSAGE_BYTES: String(MAX), PYML_TEST_DELAY_MS: '300' } });
});

test.after(async () => {
  if (served) await served.stop();
  fixture?.cleanup();
});

interface Answer { type: number; id: number; body: Buffer }

/** A raw connection to the frame socket: every frame the model sends, by id. */
async function connect(): Promise<{ socket: Socket; answer(id: number, timeoutMs?: number): Promise<Answer>; answers: Map<number, Answer> }> {
  const socket = net.connect(frames);
  await new Promise<void>((resolve, reject) => socket.once('connect', resolve).once('error', reject));
  const answers = new Map<number, Answer>();
  const waiting = new Map<number, (a: Answer) => void>();
  const reader = new FrameReader(MAX + 16, {
    frame: (type, id, body) => {
      const a = { type, id, body: Buffer.from(body) };
      answers.set(id, a);
      waiting.get(id)?.(a);
    },
    oversize: (type, id, bytes) => { throw new Error(`the model sent an oversize frame ${type} ${id} of ${bytes} bytes`); },
  });
  socket.on('data', (c: Buffer) => reader.push(c));
  return {
    socket, answers,
    answer: (id, timeoutMs = 10_000) => (answers.has(id) ? Promise.resolve(answers.get(id)!) : new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`no answer to call ${id} in ${timeoutMs} ms`)), timeoutMs);
      waiting.set(id, (a) => { clearTimeout(timer); resolve(a); });
    })),
  };
}

const call = (socket: Socket, id: number, c: Omit<CallFrame, 'timeoutMs'> & { timeoutMs?: number }) => writeFrame(socket, FrameType.CALL, id, callFrameParts({ timeoutMs: 10_000, ...c }));

function inferRequest(rows: number, n = 1n): Buffer {
  const x = Float32Array.from({ length: rows * 4 }, (_, i) => i);
  return encodeInferRequest({
    modelName: 'affine', raw: true,
    inputs: [{ name: 'x', tensor: { dtype: 'FP32', shape: [rows, 4], data: x } }, { name: 'n', tensor: { dtype: 'INT64', shape: [rows], data: new BigInt64Array(rows).fill(n) } }],
  });
}

const restBody = (id: string, n: number) => Buffer.from(JSON.stringify({ id, inputs: [{ name: 'x', datatype: 'FP32', shape: [1, 4], data: [1, 2, 3, 4] }, { name: 'n', datatype: 'INT64', shape: [1], data: [n] }] }));

test('the ready line names the frame socket; ModelInfer travels as protobuf both ways, many calls on one connection', async () => {
  assert.is((served.ready as { frames?: string }).frames, frames);
  const c = await connect();
  call(c.socket, 1, { method: 'ModelInfer', name: '', version: '', request: inferRequest(2) });
  call(c.socket, 2, { method: 'ModelInfer', name: '', version: '', request: inferRequest(1, 5n) });
  const [one, two] = await Promise.all([c.answer(1), c.answer(2)]);
  assert.is(one.type, FrameType.RESULT);
  assert.is(one.body[0], RESULT_PROTO);
  const res = decodeInferResponse(one.body.subarray(1));
  assert.equal(Array.from(res.outputs.find((o) => o.name === 'y')!.tensor.data as Float32Array), Array.from({ length: 8 }, (_, i) => Math.fround(Math.fround(i * 2) + 0.1)));
  assert.equal(Array.from(decodeInferResponse(two.body.subarray(1)).outputs.find((o) => o.name === 'm')!.tensor.data as BigInt64Array), [15n]);
  c.socket.destroy();
});

test('REST_INFER: the JSON body as the client sent it, answered with JSON text; its errors carry the HTTP status', async () => {
  const c = await connect();
  call(c.socket, 1, { method: 'RestInfer', name: 'affine', version: '', request: restBody('req-7', 2) });
  call(c.socket, 2, { method: 'RestInfer', name: 'affine', version: '', request: Buffer.from('{"inputs":[') });
  call(c.socket, 3, { method: 'RestInfer', name: 'other', version: '', request: restBody('x', 1) });
  call(c.socket, 4, { method: 'RestInfer', name: 'affine', version: '', request: restBody('x', -777) });
  const ok = await c.answer(1);
  assert.is(ok.body[0], RESULT_JSON);
  const json = JSON.parse(ok.body.subarray(1).toString());
  assert.is(json.id, 'req-7');
  assert.equal(json.outputs.find((o: { name: string }) => o.name === 'm').data, [6]);
  const notJson = readFailureFrame((await c.answer(2)).body);
  assert.is(notJson.httpStatus, 400);
  assert.is(notJson.code, status.INVALID_ARGUMENT);
  assert.match(notJson.message, /request body is not JSON/);
  const other = readFailureFrame((await c.answer(3)).body);
  assert.is(other.httpStatus, 404);
  assert.match(other.message, /model 'other' is not served here \(this is 'affine'/);
  const blamed = readFailureFrame((await c.answer(4)).body);
  assert.is(blamed.httpStatus, 400);
  assert.match(blamed.message, /n = -777 is not a valid count/);
  c.socket.destroy();
});

test('a gRPC failure keeps its status and trailer metadata (pyml-tensor)', async () => {
  const c = await connect();
  call(c.socket, 9, { method: 'ModelInfer', name: '', version: '', request: inferRequest(1, -777n) });
  const failure = readFailureFrame((await c.answer(9)).body);
  assert.is(failure.code, status.INVALID_ARGUMENT);
  assert.equal(failure.metadata?.get('pyml-tensor'), ['n']);
  c.socket.destroy();
});

test('a frame over the limit fails its call from its header, its bytes are skipped, and the connection serves on', async () => {
  const c = await connect();
  const size = MAX + 50_000;
  const head = Buffer.alloc(FRAME_HEADER_BYTES);
  head.writeUInt32BE(size, 0);
  head[4] = FrameType.CALL;
  head.writeUInt32BE(5, 5);
  c.socket.write(head);
  const failure = readFailureFrame((await c.answer(5)).body);
  assert.is(failure.code, status.RESOURCE_EXHAUSTED);
  assert.match(failure.message, new RegExp(`call frame of ${size} bytes is larger than the limit`));
  // The oversize body arrives after the answer, in pieces; then an ordinary call on the same connection.
  for (let sent = 0; sent < size; sent += 8192) c.socket.write(Buffer.alloc(Math.min(8192, size - sent), 7));
  call(c.socket, 6, { method: 'ModelInfer', name: '', version: '', request: inferRequest(1) });
  assert.is((await c.answer(6)).type, FrameType.RESULT);
  // A request under the frame limit but over the message limit is refused with the message limit.
  call(c.socket, 7, { method: 'ModelInfer', name: '', version: '', request: Buffer.alloc(MAX + 1) });
  assert.match(readFailureFrame((await c.answer(7)).body).message, new RegExp(`request to ModelInfer of ${MAX + 1} bytes is larger than the limit of ${MAX} bytes`));
  c.socket.destroy();
});

test('a call written one byte at a time is answered; a malformed call and an unknown method are refused by id', async () => {
  const c = await connect();
  const parts = callFrameParts({ method: 'ModelInfer', name: '', version: '', request: inferRequest(1), timeoutMs: 10_000 });
  const body = Buffer.concat(parts);
  const whole = Buffer.concat([Buffer.from([0, 0, 0, 0, FrameType.CALL, 0, 0, 0, 11]), body]);
  whole.writeUInt32BE(body.length, 0);
  for (const byte of whole) {
    c.socket.write(Buffer.of(byte));
    await new Promise((r) => setImmediate(r));
  }
  assert.is((await c.answer(11)).type, FrameType.RESULT);
  writeFrame(c.socket, FrameType.CALL, 12, [Buffer.of(0, 1)]);
  assert.match(readFailureFrame((await c.answer(12)).body).message, /malformed call frame/);
  writeFrame(c.socket, FrameType.CALL, 13, [Buffer.of(99, 0, 0, 0, 1, 0, 0, 0, 0)]);
  assert.is(readFailureFrame((await c.answer(13)).body).code, status.UNIMPLEMENTED);
  c.socket.destroy();
});

test('CANCEL drops the answer of a call in flight; the call after it is answered', async () => {
  const c = await connect();
  call(c.socket, 21, { method: 'ModelInfer', name: '', version: '', request: inferRequest(1) });
  writeFrame(c.socket, FrameType.CANCEL, 21, []);
  call(c.socket, 22, { method: 'ModelInfer', name: '', version: '', request: inferRequest(1) });
  await c.answer(22);
  // Both predictions took the fixture's 300 ms; the cancelled one has had time to settle and say nothing.
  await new Promise((r) => setTimeout(r, 400));
  assert.not.ok(c.answers.has(21), 'the cancelled call was answered');
  c.socket.destroy();
});

test('a call past its timeout is answered DEADLINE_EXCEEDED by the model', async () => {
  const c = await connect();
  call(c.socket, 31, { method: 'ModelInfer', name: '', version: '', request: inferRequest(1), timeoutMs: 50 });
  call(c.socket, 32, { method: 'RestInfer', name: 'affine', version: '', request: restBody('slow', 1), timeoutMs: 50 });
  assert.is(readFailureFrame((await c.answer(31)).body).code, status.DEADLINE_EXCEEDED);
  const rest = readFailureFrame((await c.answer(32)).body);
  assert.is(rest.code, status.DEADLINE_EXCEEDED);
  assert.is(rest.httpStatus, 504);
  c.socket.destroy();
});

test('a large REST answer comes back as the protobuf response (the front writes its JSON as it streams)', async () => {
  const c = await connect();
  const rows = 1500;
  const body = Buffer.from(JSON.stringify({ inputs: [
    { name: 'x', datatype: 'FP32', shape: [rows, 4], data: Array.from({ length: rows * 4 }, (_, i) => i % 100) },
    { name: 'n', datatype: 'INT64', shape: [rows], data: Array.from({ length: rows }, () => 1) },
  ] }));
  call(c.socket, 41, { method: 'RestInfer', name: 'affine', version: '', request: body });
  const answer = await c.answer(41);
  assert.is(answer.body[0], RESULT_PROTO);
  assert.equal(decodeInferResponse(answer.body.subarray(1)).outputs.find((o) => o.name === 'y')!.tensor.shape, [rows, 4]);
  c.socket.destroy();
});

test('SIGTERM drains: the call in flight is answered, the process exits 0', async () => {
  const c = await connect();
  call(c.socket, 51, { method: 'ModelInfer', name: '', version: '', request: inferRequest(1) });
  await new Promise((r) => setTimeout(r, 50));
  served.child.kill('SIGTERM');
  assert.is((await c.answer(51)).type, FrameType.RESULT);
  assert.is(await served.exited, 0);
  served = undefined as unknown as Served;
});

test.run();
