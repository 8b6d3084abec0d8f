import {
  HealthStatus, decodeFlag, decodeHealthCheckResponse, decodeInferResponse, decodeModelMetadata, encodeEmpty, encodeHealthCheckRequest,
  encodeInferRequest, encodeModelRef,
} from '@pyml/runtime/protocol';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { runProcess } from '../helpers/cli.ts';
import { requireTool } from '../helpers/tools.ts';
import { type Served, makeRoot, startServe } from './fixtures.ts';

/**
 * The image's gRPC server is node:http2 with pyml's own gRPC wire code, so it is checked with a client that shares
 * no code with it: Python's grpcio (gRPC C-core), over the Unix socket and over --tcp, gzip-compressed requests
 * included (grpcio compresses them itself).
 */

const PYTHON = '/usr/bin/python3';
const GRPCIO_CLIENT = `
import grpc, json, sys
job = json.load(sys.stdin)
channel = grpc.insecure_channel(job['target'])
out = []
for c in job['calls']:
    compression = grpc.Compression.Gzip if c.get('gzip') else None
    try:
        if c.get('stream'):
            call = channel.unary_stream(c['path'])(bytes.fromhex(c['request']), timeout=20)
            messages = []
            for m in call:
                messages.append(m.hex())
                if len(messages) >= c['stream']:
                    call.cancel()
                    break
            out.append({'ok': True, 'messages': messages})
        else:
            response = channel.unary_unary(c['path'])(bytes.fromhex(c['request']), timeout=20, compression=compression)
            out.append({'ok': True, 'response': response.hex()})
    except grpc.RpcError as e:
        trailing = {k: (v if isinstance(v, str) else v.hex()) for k, v in (e.trailing_metadata() or ())}
        out.append({'ok': False, 'code': e.code().name, 'details': e.details(), 'trailing': trailing})
print(json.dumps(out))
`;

interface PyCall { path: string; request: Buffer; stream?: number; gzip?: boolean }
type PyResult = { ok: true; response?: string; messages?: string[] } | { ok: false; code: string; details: string; trailing: Record<string, string> };

async function grpcio(target: string, calls: PyCall[]): Promise<PyResult[]> {
  const job = JSON.stringify({ target, calls: calls.map((c) => ({ ...c, request: c.request.toString('hex') })) });
  const r = await runProcess(PYTHON, ['-c', GRPCIO_CLIENT], { input: job });
  if (r.code !== 0) throw new Error(`grpcio client failed (${r.code}): ${r.stderr}`);
  return JSON.parse(r.stdout) as PyResult[];
}

const OIP = (method: string) => `/inference.GRPCInferenceService/${method}`;
const request = (nValue = 2n, xName = 'x') => encodeInferRequest({
  modelName: 'affine', raw: true,
  inputs: [
    { name: xName, tensor: { dtype: 'FP32', shape: [1, 4], data: Float32Array.of(1, 2, 3, 4) } },
    { name: 'n', tensor: { dtype: 'INT64', shape: [1], data: BigInt64Array.of(nValue) } },
  ],
});

let fixture: ReturnType<typeof makeRoot>;
let served: Served;

test.before(async () => {
  requireTool(PYTHON, 'python3');
  const probe = await runProcess(PYTHON, ['-c', 'import grpc']);
  if (probe.code !== 0) throw new Error(`the tests need Python's grpcio (Debian package python3-grpcio); run 'npm run setup': ${probe.stderr}`);
  fixture = makeRoot('affine');
  served = await startServe(fixture.root, { args: ['--tcp', '127.0.0.1:0'] });
});

test.after(async () => {
  if (served) assert.is(await served.stop(), 0);
  fixture?.cleanup();
});

test('grpcio over the socket and over TCP: every method, raw tensors both ways, gzip-compressed requests, health Check and Watch', async () => {
  for (const target of [`unix:${served.socket}`, String(served.ready.tcp)]) {
    const [live, ready, modelReady, metadata, infer, gzipped, check, watch] = await grpcio(target, [
      { path: OIP('ServerLive'), request: encodeEmpty() },
      { path: OIP('ServerReady'), request: encodeEmpty() },
      { path: OIP('ModelReady'), request: encodeModelRef({ name: 'affine', version: '' }) },
      { path: OIP('ModelMetadata'), request: encodeModelRef({ name: 'affine', version: '' }) },
      { path: OIP('ModelInfer'), request: request() },
      { path: OIP('ModelInfer'), request: request(5n), gzip: true },
      { path: '/grpc.health.v1.Health/Check', request: encodeHealthCheckRequest({ service: '' }) },
      { path: '/grpc.health.v1.Health/Watch', request: encodeHealthCheckRequest({ service: 'affine' }), stream: 1 },
    ]);
    const bytes = (r: PyResult, what: string) => {
      assert.ok(r.ok, `${target} ${what}: ${JSON.stringify(r)}`);
      return Buffer.from((r as { response: string }).response, 'hex');
    };
    assert.is(decodeFlag(bytes(live, 'ServerLive')), true);
    assert.is(decodeFlag(bytes(ready, 'ServerReady')), true);
    assert.is(decodeFlag(bytes(modelReady, 'ModelReady')), true);
    assert.is(decodeModelMetadata(bytes(metadata, 'ModelMetadata')).name, 'affine');
    const y = decodeInferResponse(bytes(infer, 'ModelInfer')).outputs.find((o) => o.name === 'y')!.tensor;
    assert.equal([...(y.data as Float32Array)], [2.1, 4.1, 6.1, 8.1].map(Math.fround));
    const m = decodeInferResponse(bytes(gzipped, 'gzip ModelInfer')).outputs.find((o) => o.name === 'm')!.tensor;
    assert.equal([...(m.data as BigInt64Array)], [15n]);
    assert.is(decodeHealthCheckResponse(bytes(check, 'Check')), HealthStatus.SERVING);
    assert.ok(watch.ok, JSON.stringify(watch));
    assert.is(decodeHealthCheckResponse(Buffer.from((watch as { messages: string[] }).messages[0], 'hex')), HealthStatus.SERVING);
  }
});

test('grpcio sees the caller\'s errors as the caller\'s: INVALID_ARGUMENT with pyml-tensor (percent-encoded), NOT_FOUND, UNIMPLEMENTED; a good call after', async () => {
  const [unknownInput, blamed, otherModel, noMethod, good] = await grpcio(`unix:${served.socket}`, [
    { path: OIP('ModelInfer'), request: request(2n, 'entrée'), gzip: true },
    { path: OIP('ModelInfer'), request: request(-777n) },
    { path: OIP('ModelMetadata'), request: encodeModelRef({ name: 'other', version: '' }) },
    { path: OIP('NoSuchMethod'), request: Buffer.alloc(0) },
    { path: OIP('ModelInfer'), request: request() },
  ]);
  assert.ok(!unknownInput.ok && unknownInput.code === 'INVALID_ARGUMENT', JSON.stringify(unknownInput));
  assert.match(unknownInput.details, /entrée/);
  assert.is(decodeURIComponent(unknownInput.trailing['pyml-tensor']), 'entrée');
  assert.ok(!blamed.ok && blamed.code === 'INVALID_ARGUMENT' && blamed.trailing['pyml-tensor'] === 'n', JSON.stringify(blamed));
  assert.ok(!otherModel.ok && otherModel.code === 'NOT_FOUND', JSON.stringify(otherModel));
  assert.ok(!noMethod.ok && noMethod.code === 'UNIMPLEMENTED', JSON.stringify(noMethod));
  assert.ok(good.ok, JSON.stringify(good));
});

test.run();
