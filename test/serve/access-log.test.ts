import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { type Served, buildImages, http, startServe, v2Client, waitFor } from './fixtures.ts';

/**
 * `pyml serve`'s logs: an access line per request answered (protocol, request, status, latency), as JSON lines by
 * default or as text with --log-format text, which the model processes follow; --access-log off leaves it out.
 */

let built: Awaited<ReturnType<typeof buildImages>>;
const ROW = { inputs: [{ name: 'input', datatype: 'FP32', shape: [1, 4], data: [5.1, 3.5, 1.4, 0.2] }] };

test.before(async () => {
  built = await buildImages(['iris']);
});

test.after(async () => {
  await built?.cleanup();
});

const jsonLines = (text: string) => text.split('\n').filter((l) => l.startsWith('{')).map((l) => JSON.parse(l) as Record<string, unknown>);

test('JSON lines: one access line per REST and gRPC request, with its status and latency', async () => {
  let served: Served | undefined;
  try {
    served = await startServe([built.images.iris, '--runner', 'embedded']);
    assert.is((await http(served.ready.http, '/v2/models/iris/infer', ROW)).status, 200);
    assert.is((await http(served.ready.http, '/v2/models/nope/infer', ROW)).status, 404);
    const client = v2Client(served.ready.grpc);
    try {
      await client.call('ModelInfer', { model_name: 'iris', inputs: [{ name: 'input', datatype: 'FP32', shape: [1, 4], contents: { fp32_contents: [5.1, 3.5, 1.4, 0.2] } }] });
    } finally {
      client.close();
    }
    const access = () => jsonLines(served!.stderr()).filter((l) => l.msg === 'access');
    await waitFor('three access lines', () => access().length >= 3, 10_000);
    const [ok, missing, grpc] = access();
    assert.equal([ok.protocol, ok.request, ok.status], ['http', 'POST /v2/models/iris/infer', 200]);
    assert.equal([missing.request, missing.status], ['POST /v2/models/nope/infer', 404]);
    assert.equal([grpc.protocol, grpc.request, grpc.status], ['grpc', 'POST /inference.GRPCInferenceService/ModelInfer', 0]);
    for (const line of [ok, missing, grpc]) assert.ok(typeof line.ms === 'number' && line.ms >= 0, `latency: ${JSON.stringify(line)}`);
  } finally {
    await served?.stop();
  }
});

test('--log-format text: the service and its model processes log text lines; --access-log off drops the access lines', async () => {
  let served: Served | undefined;
  try {
    served = await startServe([built.images.iris, '--runner', 'embedded', '--log-format', 'text', '--access-log', 'off']);
    assert.is((await http(served.ready.http, '/v2/models/iris/infer', ROW)).status, 200);
    const stderr = served.stderr();
    assert.equal(jsonLines(stderr), [], `no JSON log lines:\n${stderr}`);
    // The model process's own start-up line, in text.
    assert.match(stderr, /^\S+Z INFO  model initialised .*model=iris/m);
    assert.not.match(stderr, / access /);
  } finally {
    await served?.stop();
  }
  try {
    served = await startServe([built.images.iris, '--runner', 'embedded', '--log-format', 'text']);
    assert.is((await http(served.ready.http, '/v2/models/iris/infer', ROW)).status, 200);
    await waitFor('the access line', () => / access /.test(served!.stderr()), 10_000);
    assert.match(served.stderr(), /INFO  access (component=serve )?protocol=http request="POST \/v2\/models\/iris\/infer" status=200 ms=\d/);
  } finally {
    await served?.stop();
  }
});

test('a bad --log-format or --access-log is a usage error', async () => {
  const { pyml } = await import('../helpers/cli.ts');
  for (const [flag, value] of [['--log-format', 'xml'], ['--access-log', 'maybe']]) {
    const r = await pyml(['serve', built.images.iris, flag, value]);
    assert.is(r.code, 2, r.stderr);
    assert.match(r.stderr, `${flag} must be`);
  }
});

test.run();
