import { connect, constants } from 'node:http2';
import { connect as tcpConnect } from 'node:net';
import { Client, Metadata, credentials, status } from '@grpc/grpc-js';
import {
  HealthStatus, decodeFlag, decodeHealthCheckResponse, decodeInferResponse, encodeHealthCheckRequest, encodeInferRequest, encodeModelRef,
} from '@pyml/runtime/protocol';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { frame } from '../../packages/runtime/src/oip/grpc-wire.ts';
import { runProcess } from '../helpers/cli.ts';
import { requireTool } from '../helpers/tools.ts';
import { type Served, buildImages, http, startServe, waitFor } from './fixtures.ts';

/**
 * The service's gRPC front speaks gRPC over HTTP/2 itself (node:http2), so it is checked here with a client that
 * shares no code with it or with grpc-js: Python's grpcio (gRPC C-core), plus raw HTTP/2 for what a stock client
 * never sends.
 */

const PYTHON = '/usr/bin/python3';
// Calls from a JSON job on stdin, message bytes as hex (grpcio's generic stubs take and return bytes).
const GRPCIO_CLIENT = `
import grpc, json, sys
job = json.load(sys.stdin)
channel = grpc.insecure_channel(job['target'])
out = []
for c in job['calls']:
    try:
        if c.get('stream'):
            call = channel.unary_stream(c['path'])(bytes.fromhex(c['request']), timeout=c.get('timeout', 20))
            messages = []
            for m in call:
                messages.append(m.hex())
                if len(messages) >= c['stream']:
                    call.cancel()
                    break
            out.append({'ok': True, 'messages': messages})
        else:
            response = channel.unary_unary(c['path'])(bytes.fromhex(c['request']), timeout=c.get('timeout', 20))
            out.append({'ok': True, 'response': response.hex()})
    except grpc.RpcError as e:
        trailing = {k: (v if isinstance(v, str) else v.hex()) for k, v in (e.trailing_metadata() or ())}
        out.append({'ok': False, 'code': e.code().name, 'details': e.details(), 'trailing': trailing})
print(json.dumps(out))
`;

interface PyCall { path: string; request: Buffer; timeout?: number; stream?: number }
type PyResult = { ok: true; response?: string; messages?: string[] } | { ok: false; code: string; details: string; trailing: Record<string, string> };

async function grpcio(target: string, calls: PyCall[]): Promise<PyResult[]> {
  const job = JSON.stringify({ target, calls: calls.map((c) => ({ ...c, request: c.request.toString('hex') })) });
  const r = await runProcess(PYTHON, ['-c', GRPCIO_CLIENT], { input: job });
  if (r.code !== 0) throw new Error(`grpcio client failed (${r.code}): ${r.stderr}`);
  return JSON.parse(r.stdout) as PyResult[];
}

const INFER = '/inference.GRPCInferenceService/ModelInfer';
const irisRequest = (name = 'input') => encodeInferRequest({
  modelName: 'iris', raw: true,
  inputs: [{ name, tensor: { dtype: 'FP32', shape: [2, 4], data: Float32Array.of(5.1, 3.5, 1.4, 0.2, 6.7, 3.0, 5.2, 2.3) } }],
});
const echoRequest = (delayMs: number) => encodeInferRequest({
  modelName: 'echo', raw: true, inputs: [{ name: 'x', tensor: { dtype: 'FP32', shape: [1, 2], data: Float32Array.of(1, delayMs) } }],
});

/** CANCELLED calls counted for echo (a caller whose own deadline passes first cancels too). */
async function cancelledCount(protocol: string): Promise<number> {
  const metrics = (await http(served.ready.http, '/metrics')).text;
  return Number(new RegExp(`pyml_request_errors_total\\{model="echo",version="0.1.0",protocol="${protocol}",code="CANCELLED"\\} (\\d+)`).exec(metrics)?.[1] ?? 0);
}

let built: Awaited<ReturnType<typeof buildImages>>;
let served: Served;

test.before(async () => {
  requireTool(PYTHON, 'python3');
  const probe = await runProcess(PYTHON, ['-c', 'import grpc']);
  if (probe.code !== 0) throw new Error(`the tests need Python's grpcio (Debian package python3-grpcio); run 'npm run setup': ${probe.stderr}`);
  built = await buildImages(['iris', 'echo']);
  served = await startServe([built.images.iris, built.images.echo, '--max-message-bytes', '65536']);
});

test.after(async () => {
  if (served) assert.is(await served.stop(), 0, 'serve exits 0 on SIGTERM');
  await built?.cleanup();
});

test('grpcio (C-core) client: infer, metadata calls, health Check and Watch', async () => {
  const [infer, ready, unknownReady, check, watch] = await grpcio(served.ready.grpc, [
    { path: INFER, request: irisRequest() },
    { path: '/inference.GRPCInferenceService/ModelReady', request: encodeModelRef({ name: 'iris' }) },
    { path: '/inference.GRPCInferenceService/ModelReady', request: encodeModelRef({ name: 'ghost' }) },
    { path: '/grpc.health.v1.Health/Check', request: encodeHealthCheckRequest({ service: 'echo' }) },
    { path: '/grpc.health.v1.Health/Watch', request: encodeHealthCheckRequest({ service: '' }), stream: 1 },
  ]);
  assert.ok(infer.ok, JSON.stringify(infer));
  const response = decodeInferResponse(Buffer.from(infer.response!, 'hex'));
  assert.is(response.modelName, 'iris');
  const label = response.outputs.find((o) => o.name === 'label')!.tensor;
  assert.equal([...(label.data as BigInt64Array)].map(Number), [0, 2]);
  assert.ok(ready.ok && decodeFlag(Buffer.from(ready.response!, 'hex')));
  assert.ok(unknownReady.ok && !decodeFlag(Buffer.from(unknownReady.response!, 'hex')));
  assert.ok(check.ok && decodeHealthCheckResponse(Buffer.from(check.response!, 'hex')) === HealthStatus.SERVING);
  assert.ok(watch.ok);
  assert.equal(watch.messages!.map((m) => decodeHealthCheckResponse(Buffer.from(m, 'hex'))), [HealthStatus.SERVING]);
});

test('grpcio client: statuses, details and the model\'s trailers come through; deadline; unknown method', async () => {
  const started = Date.now();
  const [bad, ghost, late, unknown, big, after] = await grpcio(served.ready.grpc, [
    { path: INFER, request: irisRequest('sepal') },
    { path: INFER, request: encodeInferRequest({ modelName: 'ghost', inputs: [] }) },
    { path: INFER, request: echoRequest(5000), timeout: 0.3 },
    { path: '/inference.GRPCInferenceService/Nothing', request: Buffer.alloc(0) },
    { path: INFER, request: Buffer.alloc(70_000, 1) },
    { path: INFER, request: echoRequest(0) },
  ]);
  assert.ok(!bad.ok && bad.code === 'INVALID_ARGUMENT', JSON.stringify(bad));
  assert.match(bad.details, /sepal/);
  assert.is(bad.trailing['pyml-tensor'], 'sepal', 'the model\'s pyml-tensor trailer reaches the client');
  assert.ok(!ghost.ok && ghost.code === 'NOT_FOUND');
  assert.match(ghost.details, /model 'ghost' is not served here \(models: iris, echo\)/);
  assert.ok(!late.ok && late.code === 'DEADLINE_EXCEEDED', JSON.stringify(late));
  assert.ok(!unknown.ok && unknown.code === 'UNIMPLEMENTED', JSON.stringify(unknown));
  assert.ok(!big.ok && big.code === 'RESOURCE_EXHAUSTED', JSON.stringify(big));
  assert.match(big.details, /70000 bytes is larger than the limit of 65536 bytes/);
  assert.ok(after.ok, 'the service serves on');
  assert.ok(Date.now() - started < 4500, 'the late call did not wait for the model');
});

test('a gzip-compressed request (grpc-js client compression) is accepted', async () => {
  const client = new Client(served.ready.grpc, credentials.createInsecure(), { 'grpc.default_compression_algorithm': 2 });
  try {
    const identity = (b: Buffer) => b;
    const reply = await new Promise<Buffer>((resolve, reject) => client.makeUnaryRequest(INFER, identity, identity, irisRequest(), new Metadata(), {}, (e, r) => (e ? reject(e) : resolve(r!))));
    assert.is(decodeInferResponse(reply).outputs.length, 2);
  } finally {
    client.close();
  }
});

test('raw HTTP/2: not POST → 405, not application/grpc → 415, a torn request message → INVALID_ARGUMENT; a cancelled call leaves the service serving', async () => {
  const session = connect(`http://${served.ready.grpc}`);
  const exchange = (headers: Record<string, string>, body?: Buffer, cancelAfterMs?: number) => new Promise<Record<string, unknown>>((resolve, reject) => {
    const stream = session.request(headers, { endStream: body === undefined });
    let answer: Record<string, unknown> = {};
    stream.on('response', (h) => { answer = { ...h }; });
    stream.on('trailers', (t) => { answer = { ...answer, ...t }; });
    stream.on('data', () => {});
    stream.on('close', () => resolve(answer));
    stream.on('error', reject);
    if (body) stream.end(body);
    if (cancelAfterMs !== undefined) setTimeout(() => stream.close(constants.NGHTTP2_CANCEL), cancelAfterMs);
  });
  try {
    const grpc = { ':method': 'POST', ':path': INFER, 'content-type': 'application/grpc', te: 'trailers' };
    assert.is((await exchange({ ':method': 'GET', ':path': INFER }))[':status'], 405);
    assert.is((await exchange({ ...grpc, 'content-type': 'text/plain' }, Buffer.alloc(5)))[':status'], 415);
    const torn = Buffer.alloc(5 + 10);
    torn.writeUInt32BE(40, 1);
    const tornAnswer = await exchange(grpc, torn);
    // The caller's framing is the caller's fault.
    assert.is(tornAnswer['grpc-status'], String(status.INVALID_ARGUMENT));
    assert.match(decodeURI(String(tornAnswer['grpc-message'])), /10 bytes of DATA for a message of 40 bytes/);
    const cancelledBefore = await cancelledCount('grpc');
    const cancelled = await exchange(grpc, frame(echoRequest(2000)), 100);
    assert.is(cancelled['grpc-status'], undefined, 'the cancelled call got no status');
    // The call to the model is called off with it: its slot is free long before the model would have answered.
    const freed = await waitFor('the cancelled call to leave the model', async () => /pyml_model_in_flight\{model="echo",version="0.1.0"\} 0/.test((await http(served.ready.http, '/metrics')).text), 1500);
    assert.ok(freed < 1500);
    assert.is(await cancelledCount('grpc'), cancelledBefore + 1, 'counted as CANCELLED');
    const ok = await exchange(grpc, frame(echoRequest(0)));
    assert.is(ok['grpc-status'], '0');
  } finally {
    session.close();
  }
});

test('an HTTP client that hangs up: the call to the model is called off too', async () => {
  const abort = new AbortController();
  const call = fetch(`http://${served.ready.http}/v2/models/echo/infer`, { method: 'POST', body: JSON.stringify({ inputs: [{ name: 'x', datatype: 'FP32', shape: [1, 2], data: [1, 2000] }] }), signal: abort.signal }).catch((e: Error) => e.name);
  await waitFor('the call to reach the model', async () => /pyml_model_in_flight\{model="echo",version="0.1.0"\} 1/.test((await http(served.ready.http, '/metrics')).text), 1500);
  abort.abort();
  assert.is(await call, 'AbortError');
  await waitFor('the abandoned call to leave the model', async () => /pyml_model_in_flight\{model="echo",version="0.1.0"\} 0/.test((await http(served.ready.http, '/metrics')).text), 1000);
  assert.is(await cancelledCount('http'), 1);
});

test('garbage and HTTP/1.1 on the gRPC port cost the sender its connection, never the service', async () => {
  const [host, port] = [served.ready.grpc.slice(0, served.ready.grpc.lastIndexOf(':')), Number(served.ready.grpc.slice(served.ready.grpc.lastIndexOf(':') + 1))];
  for (const junk of [Buffer.from('GET /v2 HTTP/1.1\r\nHost: x\r\n\r\n'), Buffer.from(Array.from({ length: 4096 }, (_, i) => (i * 7919) % 256))]) {
    await new Promise<void>((resolve) => {
      const socket = tcpConnect(port, host, () => socket.end(junk));
      socket.on('data', () => {});
      socket.on('error', () => resolve());
      socket.on('close', () => resolve());
    });
  }
  const [after] = await grpcio(served.ready.grpc, [{ path: INFER, request: echoRequest(0) }]);
  assert.ok(after.ok, JSON.stringify(after));
});

test('SIGTERM drains: a call in flight is answered, then serve exits 0', async () => {
  const draining = await startServe([built.images.echo]);
  const client = new Client(draining.ready.grpc, credentials.createInsecure());
  try {
    const identity = (b: Buffer) => b;
    const slow = new Promise<Buffer>((resolve, reject) => client.makeUnaryRequest(INFER, identity, identity, echoRequest(800), new Metadata(), {}, (e, r) => (e ? reject(e) : resolve(r!))));
    await new Promise((r) => setTimeout(r, 200));
    const exited = draining.stop();
    const reply = decodeInferResponse(await slow);
    assert.equal([...(reply.outputs[0].tensor.data as Float32Array)], [1, 800]);
    assert.is(await exited, 0);
  } finally {
    client.close();
  }
});

test.run();
