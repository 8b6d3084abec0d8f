import { type ChildProcess, spawn } from 'node:child_process';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { entrypointCommand, unpackImage } from '@pyml/launcher';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { REPO, runProcess } from '../helpers/cli.ts';
import { tempDir } from '../helpers/project.ts';
import { type Served, buildImages, startServe } from './fixtures.ts';
import { descriptorsModule, describeProtoFiles } from '../../packages/runtime/src/oip/reflection-generate.ts';

/**
 * gRPC server reflection on both gRPC servers (`pyml serve`'s front and the image's own --tcp port), asked as
 * grpcurl asks it: by reflection_client.py, a client on Debian's python3-grpcio and protobuf whose reflection
 * messages are built there from descriptor_pb2, which puts the FileDescriptorProtos it receives into a real
 * DescriptorPool (which checks them: types resolve, map entries are well formed) and makes a ModelInfer call with
 * request and response classes made from them alone, as `grpcurl -d '{...}' HOST:PORT inference.GRPCInferenceService/ModelInfer`.
 */

const PYTHON = '/usr/bin/python3';
const CLIENT = join(REPO, 'test/serve/reflection_client.py');

let built: Awaited<ReturnType<typeof buildImages>>;
let served: Served | undefined;
let image: ChildProcess | undefined;
let imageGrpc: string;

test.before(async () => {
  const check = await runProcess(PYTHON, ['-c', 'import grpc, google.protobuf']);
  if (check.code !== 0) throw new Error(`the reflection client needs Debian's python3-grpcio (and python3-protobuf) in ${PYTHON}; bash scripts/setup.sh installs them:\n${check.stderr}`);
  built = await buildImages(['iris']);
  served = await startServe([built.images.iris]);
  // The image's own server, as its default command runs it, with gRPC on a free TCP port.
  const unpacked = await unpackImage(built.images.iris);
  const cmd = entrypointCommand(unpacked, ['serve', '--socket', join(await tempDir('pyml-reflection-'), 'm.sock'), '--tcp', '127.0.0.1:0'], {});
  image = spawn(cmd.file, cmd.args, { env: cmd.env, cwd: cmd.cwd, stdio: ['ignore', 'pipe', 'pipe'] });
  let err = '';
  image.stderr!.on('data', (c: Buffer) => { err += c.toString(); });
  imageGrpc = await new Promise<string>((resolve, reject) => {
    let out = '';
    image!.stdout!.on('data', (c: Buffer) => {
      out += c.toString();
      const nl = out.indexOf('\n');
      if (nl >= 0) resolve((JSON.parse(out.slice(0, nl)) as { tcp: string }).tcp);
    });
    image!.once('exit', (code) => reject(new Error(`the image's server exited with ${code} before ready:\n${err}`)));
  });
});

test.after(async () => {
  image?.kill('SIGTERM');
  if (served) await served.stop();
  await built?.cleanup();
});

// eslint-disable-next-line @typescript-eslint/no-explicit-any
type Answer = any;

/** Runs the steps on one ServerReflectionInfo stream; one answer per step, then the stream's final status. */
async function reflect(target: string, version: 'v1' | 'v1alpha', steps: object[]): Promise<{ answers: Answer[]; status: string }> {
  const r = await runProcess(PYTHON, [CLIENT, target, version, ...steps.map((s) => JSON.stringify(s))]);
  if (r.code !== 0) throw new Error(`reflection_client.py exited ${r.code}:\n${r.stderr}\n${r.stdout}`);
  const lines = r.stdout.trim().split('\n').map((l) => JSON.parse(l) as Answer);
  return { answers: lines.slice(0, -1), status: lines.at(-1).status };
}

const SERVICES = ['inference.GRPCInferenceService', 'grpc.health.v1.Health', 'grpc.reflection.v1.ServerReflection', 'grpc.reflection.v1alpha.ServerReflection'];
const IRIS_REQUEST = { model_name: 'iris', inputs: [{ name: 'input', datatype: 'FP32', shape: [1, 4], contents: { fp32_contents: [5.1, 3.5, 1.4, 0.2] } }] };

for (const [where, target] of [['pyml serve', () => served!.ready.grpc], ["the image's own gRPC port", () => imageGrpc]] as const) {
  test(`${where}: list, describe and a call made from the reflected descriptors, on one stream (v1)`, async () => {
    const { answers, status } = await reflect(target(), 'v1', [
      { list: true },
      { describe: 'inference.GRPCInferenceService' },
      { describe: 'inference.ModelInferRequest' },
      { describe: 'grpc.health.v1.Health' },
      { call: 'inference.GRPCInferenceService/ModelInfer', request: IRIS_REQUEST },
    ]);
    const [list, service, message, health, call] = answers;
    assert.equal(list.services, SERVICES);
    assert.is(service.file, 'grpc_predict_v2.proto');
    assert.equal(service.methods.map((m: Answer) => [m.name, m.input, m.output]), ['ServerLive', 'ServerReady', 'ModelReady', 'ServerMetadata', 'ModelMetadata', 'ModelInfer'].map((m) => [m, `inference.${m}Request`, `inference.${m}Response`]));
    const fields = Object.fromEntries(message.fields.map((f: Answer) => [f.name, f]));
    assert.equal(Object.keys(fields), ['model_name', 'model_version', 'id', 'parameters', 'inputs', 'outputs', 'raw_input_contents']);
    assert.equal([fields.parameters.map, fields.parameters.type], [true, 'inference.ModelInferRequest.ParametersEntry']);
    assert.equal([fields.inputs.repeated, fields.inputs.type, fields.inputs.number], [true, 'inference.ModelInferRequest.InferInputTensor', 5]);
    assert.equal(health.methods.map((m: Answer) => [m.name, m.server_streaming]), [['Check', false], ['Watch', true]]);
    assert.equal(call.response.outputs.map((o: Answer) => o.name), ['probabilities', 'label']);
    assert.equal(call.response.outputs[1].contents.int64_contents, ['0']);
    assert.is(status, 'OK', 'the server ends the stream OK once the client ended its side');
  });

  test(`${where}: v1alpha (older grpcurl), nested and enum symbols, files by name, and errors as error_response`, async () => {
    const { answers, status } = await reflect(target(), 'v1alpha', [
      { list: true },
      { describe: 'grpc.health.v1.HealthCheckResponse.ServingStatus' },
      { describe: 'inference.InferParameter' },
      { describe: 'inference.GRPCInferenceService.ModelInfer' },
      { file: 'grpc/reflection/v1alpha/reflection.proto' },
      { describe: 'inference.NoSuchThing' },
      { file: 'nope.proto' },
      { raw: { all_extension_numbers_of_type: 'inference.ModelInferRequest' } },
      { raw: { host: 'h' } },
    ]);
    const [list, enumType, oneof, method, file, missing, missingFile, extensions, empty] = answers;
    assert.equal(list.services, SERVICES);
    assert.equal(enumType.values, ['UNKNOWN', 'SERVING', 'NOT_SERVING', 'SERVICE_UNKNOWN']);
    assert.equal(oneof.fields.map((f: Answer) => f.oneof), ['parameter_choice', 'parameter_choice', 'parameter_choice', 'parameter_choice', 'parameter_choice']);
    assert.equal([method.kind, method.input, method.output], ['method', 'inference.ModelInferRequest', 'inference.ModelInferResponse']);
    assert.equal(file.files, ['grpc/reflection/v1alpha/reflection.proto']);
    assert.is(missing.error.code, 5);
    assert.match(missing.error.message, /symbol inference\.NoSuchThing not found/);
    assert.is(missingFile.error.code, 5);
    assert.equal(extensions.response.all_extension_numbers_response, { base_type_name: 'inference.ModelInferRequest' });
    assert.equal(extensions.response.original_request, { all_extension_numbers_of_type: 'inference.ModelInferRequest' });
    assert.is(empty.error.code, 3);
    assert.is(status, 'OK');
  });
}

test('the committed descriptors are what reflection-generate.ts makes from the .proto files', async () => {
  const committed = await readFile(join(REPO, 'packages/runtime/src/oip/reflection-descriptors.ts'), 'utf8');
  assert.ok(committed === descriptorsModule(describeProtoFiles()), 'reflection-descriptors.ts is stale: run npx tsx packages/runtime/src/oip/reflection-generate.ts');
});

test.run();
