import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { Validator } from '@seriousme/openapi-schema-validator';
import { Ajv2020 } from 'ajv/dist/2020.js';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { type Served, buildImages, callError, http, startServe, v2Client } from '../serve/fixtures.ts';
import { buildEchoVersions } from '../serve/versions-images.ts';
import { pyml } from '../helpers/cli.ts';

/**
 * `pyml serve`'s OpenAPI documents, checked as API tools take them: valid OpenAPI 3.1 (the validator from npm),
 * their schemas valid JSON Schema 2020-12 (ajv, strict), and true to the server: each model's worked example is
 * accepted by its request schema and answered 200 by the service with a body its response schema accepts, and a
 * request the schema refuses is refused by the service too. Also the console's JSON, and --no-console.
 */

let built: Awaited<ReturnType<typeof buildImages>>;
let served: Served;
/** The versions in the images' pyml.config.ts. */
const VERSIONS = { iris: '1.0.0', frame: '0.1.0' };

test.before(async () => {
  built = await buildImages(['iris', 'frame']);
  served = await startServe([built.images.iris, built.images.frame]);
});

test.after(async () => {
  if (served) assert.is(await served.stop(), 0, 'serve exits 0 on SIGTERM');
  await built?.cleanup();
});

type Doc = { openapi: string; info: { title: string; version: string }; paths: Record<string, Record<string, Op>>; components: { schemas: Record<string, unknown> } };
type Op = { operationId: string; requestBody?: { content: { 'application/json': { example: unknown; schema: { $ref: string } } } }; responses: Record<string, { content?: { 'application/json': { schema: { $ref: string } } } }> };

async function validOpenApi(doc: unknown, where: string): Promise<void> {
  const validator = new Validator();
  const result = await validator.validate(doc as Record<string, unknown>);
  assert.ok(result.valid, `${where} is not valid OpenAPI: ${JSON.stringify(result.errors, null, 1)}`);
  assert.is(validator.version, '3.1');
}

/** An ajv that knows the document, so `#/components/...` references inside it resolve. */
function schemasOf(doc: Doc, id: string) {
  const ajv = new Ajv2020({ strict: true, allErrors: true });
  // The document's `components` holds the schemas (not a JSON Schema keyword: declared so strict mode takes it).
  ajv.addVocabulary(['components']);
  ajv.addSchema({ $id: id, components: doc.components }, id);
  for (const name of Object.keys(doc.components.schemas)) assert.ok(ajv.getSchema(`${id}#/components/schemas/${name}`), `schema ${name} compiles`);
  return (ref: string) => ajv.getSchema(`${id}${ref}`)!;
}

test('/v2/docs/openapi.json: valid OpenAPI 3.1 naming every served model, with health, metadata and versioned paths', async () => {
  const res = await http(served.ready.http, '/v2/docs/openapi.json');
  assert.is(res.status, 200, res.text);
  const doc = res.body as Doc;
  await validOpenApi(doc, '/v2/docs/openapi.json');
  assert.is(doc.openapi, '3.1.0');
  // The validator does check: the same document with a path parameter made optional (OpenAPI requires them) is refused.
  const broken = structuredClone(doc) as unknown as { paths: Record<string, Record<string, { parameters: { required: boolean }[] }>> };
  broken.paths['/v2/models/iris/versions/{model_version}/infer'].post.parameters[0].required = false;
  assert.not.ok((await new Validator().validate(broken)).valid, 'an optional path parameter is invalid');
  for (const path of ['/v2/health/live', '/v2/health/ready', '/v2', '/metrics', '/v2/models/iris/infer', '/v2/models/frame/infer', '/v2/models/iris/versions/{model_version}/infer']) {
    assert.ok(doc.paths[path], `path ${path} in ${Object.keys(doc.paths).join(', ')}`);
  }
  const operationIds = Object.values(doc.paths).flatMap((p) => Object.values(p).map((op) => op.operationId));
  assert.is(new Set(operationIds).size, operationIds.length, `operation ids are unique: ${operationIds.join(', ')}`);
  schemasOf(doc, 'pyml:service');
});

test('each model\'s document: its signature as schemas, an example the service answers, and what the schema refuses the service refuses', async () => {
  const base = served.ready.http;
  for (const name of ['iris', 'frame'] as const) {
    const res = await http(base, `/v2/models/${name}/docs/openapi.json`);
    assert.is(res.status, 200, res.text);
    const doc = res.body as Doc;
    await validOpenApi(doc, `${name}'s document`);
    const pyml = JSON.parse(await readFile(join(built.images[name], 'index.json'), 'utf8')) as { manifests: { digest: string }[] };
    assert.match(doc.info.title, name);
    assert.is(doc.info.version, VERSIONS[name]);
    // The document says which image it describes.
    assert.match(JSON.stringify(doc.info), pyml.manifests[0].digest);
    const schema = schemasOf(doc, `pyml:${name}`);
    const infer = doc.paths[`/v2/models/${name}/infer`].post;
    const body = infer.requestBody!.content['application/json'];
    const requestSchema = schema(body.schema.$ref);
    assert.ok(requestSchema(body.example), `${name}'s example matches its schema: ${JSON.stringify(requestSchema.errors)}`);
    const answer = await http(base, `/v2/models/${name}/infer`, body.example);
    assert.is(answer.status, 200, `${name} answers its own example: ${answer.text}`);
    const responseSchema = schema(infer.responses['200'].content!['application/json'].schema.$ref);
    assert.ok(responseSchema(answer.body), `${name}'s answer matches the response schema: ${JSON.stringify(responseSchema.errors)}\n${answer.text}`);
  }
  // The signature's types in the schemas: iris takes FP32 [-1, 4]; frame's name column is BYTES, n INT64.
  const iris = (await http(base, '/v2/models/iris/docs/openapi.json')).body as Doc;
  const irisSchema = schemasOf(iris, 'pyml:iris-again')('#/components/schemas/iris.InferRequest');
  const request = (shape: number[], data: unknown[], datatype = 'FP32') => ({ inputs: [{ name: 'input', datatype, shape, data }] });
  assert.ok(irisSchema(request([2, 4], [5.1, 3.5, 1.4, 0.2, 6.7, 3.0, 5.2, 2.3])), 'two flowers');
  assert.ok(irisSchema(request([1, 4], [[5.1, 3.5, 1.4, 0.2]])), 'nested data');
  for (const [bad, why] of [[request([1, 3], [1, 2, 3]), 'a row of 3'], [request([1, 4], [1, 2, 3, 4], 'INT32'), 'INT32'], [{ inputs: [{ name: 'petals', datatype: 'FP32', shape: [1, 4], data: [1, 2, 3, 4] }] }, 'an unknown input'], [request([1, 4], ['a', 'b', 'c', 'd']), 'strings']] as const) {
    assert.not.ok(irisSchema(bad), `the schema refuses ${why}`);
    const answer = await http(base, '/v2/models/iris/infer', bad);
    assert.is(answer.status, 400, `the service refuses ${why} too: ${answer.text}`);
  }
  const frame = (await http(base, '/v2/models/frame/docs/openapi.json')).body as Doc;
  const frameSchemas = JSON.stringify(frame.components.schemas['frame.InferRequest']);
  for (const part of ['"const":"BYTES"', '"const":"INT64"', '"const":"FP64"', 'TensorData_BYTES']) assert.match(frameSchemas, part);
});

test('an unknown model\'s document is a 404 naming the models served; other methods are not answered with a document', async () => {
  const res = await http(served.ready.http, '/v2/models/ghost/docs/openapi.json');
  assert.is(res.status, 404);
  assert.equal(res.body, { error: "model 'ghost' is not served here (models: iris, frame)" });
  const post = await fetch(`http://${served.ready.http}/v2/docs/openapi.json`, { method: 'POST', body: '{}' });
  assert.is(post.status, 404);
});

test('/console/models.json and /console/stats.json: models with versions and digests; failures of both protocols with their messages', async () => {
  const base = served.ready.http;
  const models = (await http(base, '/console/models.json')).body as { ready: boolean; models: { name: string; versions: { version: string; digest: string; state: string }[]; example: unknown }[] };
  assert.is(models.ready, true);
  assert.equal(models.models.map((m) => m.name), ['iris', 'frame']);
  for (const m of models.models) {
    const index = JSON.parse(await readFile(join(built.images[m.name as 'iris' | 'frame'], 'index.json'), 'utf8')) as { manifests: { digest: string }[] };
    assert.equal(m.versions.map((v) => [v.version, v.digest, v.state]), [[VERSIONS[m.name as 'iris' | 'frame'], index.manifests[0].digest, 'ready']]);
  }
  const rest = await http(base, '/v2/models/iris/infer', { inputs: [{ name: 'input', datatype: 'FP32', shape: [1, 3], data: [1, 2, 3] }] });
  assert.is(rest.status, 400);
  const client = v2Client(served.ready.grpc);
  let grpcMessage: string;
  try {
    grpcMessage = (await callError(client.call('ModelInfer', { model_name: 'frame', inputs: [{ name: 'a', datatype: 'FP64', shape: [1], contents: { fp64_contents: [1] } }] }))).details;
  } finally {
    client.close();
  }
  const stats = (await http(base, '/console/stats.json')).body as { models: Record<string, { errors: number; recentErrors: { protocol: string; code: string; message: string; version: string }[] }> };
  const irisError = stats.models.iris.recentErrors.at(-1)!;
  assert.equal([irisError.protocol, irisError.code, irisError.version, irisError.message], ['http', 'INVALID_ARGUMENT', '1.0.0', rest.body.error]);
  const frameError = stats.models.frame.recentErrors.at(-1)!;
  assert.equal([frameError.protocol, frameError.code, frameError.message], ['grpc', 'INVALID_ARGUMENT', grpcMessage]);
  assert.ok(stats.models.iris.errors >= 1 && stats.models.frame.errors >= 1);
});

test('the console is served on the HTTP port, as one self-contained page under a strict policy', async () => {
  const res = await fetch(`http://${served.ready.http}/`);
  assert.is(res.status, 200);
  assert.match(res.headers.get('content-type')!, /^text\/html/);
  const csp = res.headers.get('content-security-policy')!;
  assert.match(csp, "default-src 'none'");
  assert.match(csp, /script-src 'sha256-[A-Za-z0-9+/=]+'/);
  const html = await res.text();
  // Nothing from elsewhere: no external script, style, font or image.
  assert.not.match(html, /<script[^>]+src=|<link[^>]+stylesheet|https?:\/\/(?!www\.w3\.org\/2000\/svg')/);
  console.log(`console page: ${Buffer.byteLength(html)} bytes`);
});

test('versions side by side: listed with their own digests; one templated version path when their signatures agree, each its own typed paths when not', async () => {
  const versions = await buildEchoVersions(['1.0.0', '2.0.0']);
  let both: Served | undefined;
  try {
    both = await startServe([versions.images['1.0.0'], versions.images['2.0.0']]);
    const listed = (await http(both.ready.http, '/console/models.json')).body as { models: { name: string; versions: { version: string; digest: string }[] }[] };
    const digests = await Promise.all(['2.0.0', '1.0.0'].map(async (v) => (JSON.parse(await readFile(join(versions.images[v], 'index.json'), 'utf8')) as { manifests: { digest: string }[] }).manifests[0].digest));
    assert.equal(listed.models.map((m) => [m.name, m.versions.map((v) => [v.version, v.digest])]), [['echo', [['2.0.0', digests[0]], ['1.0.0', digests[1]]]]]);
    assert.is.not(digests[0], digests[1]);
    const doc = (await http(both.ready.http, '/v2/models/echo/docs/openapi.json')).body as Doc;
    await validOpenApi(doc, 'the two-version document');
    const versioned = doc.paths['/v2/models/echo/versions/{model_version}/infer'].post as Op & { parameters: { schema: { enum: string[] } }[] };
    assert.equal(versioned.parameters[0].schema.enum, ['2.0.0', '1.0.0']);
    const answer = await http(both.ready.http, '/v2/models/echo/versions/1.0.0/infer', versioned.requestBody!.content['application/json'].example);
    assert.equal([answer.status, answer.body.model_version], [200, '1.0.0']);
    assert.is(await both.stop(), 0);

    // A version whose signature differs (3.0.0 also takes z): each version gets its own paths, typed by its own signature.
    const project = join(versions.dir, 'echo-project');
    const config = await readFile(join(project, 'pyml.config.ts'), 'utf8');
    await writeFile(join(project, 'pyml.config.ts'), config.replace(/version: '[^']*'/, "version: '3.0.0'").replace("inputs: [{ name: 'x', dtype: 'FP32', shape: [-1, 2] }]", "inputs: [{ name: 'x', dtype: 'FP32', shape: [-1, 2] }, { name: 'z', dtype: 'INT32', shape: [-1, 1] }]"));
    const v3 = join(versions.dir, 'echo-v3.0.0');
    const r = await pyml(['build', project, '--out', v3, '--json']);
    assert.is(r.code, 0, r.stderr);
    // Pinned to the older version: unversioned requests go to 1.0.0, and the unversioned path is typed by it.
    both = await startServe([versions.images['1.0.0'], v3, '--version-policy', 'echo:pinned=1.0.0']);
    const differing = (await http(both.ready.http, '/v2/models/echo/docs/openapi.json')).body as Doc;
    await validOpenApi(differing, 'the document of versions with two signatures');
    assert.not.ok(differing.paths['/v2/models/echo/versions/{model_version}/infer'], 'no templated path when versions differ');
    const schema = schemasOf(differing, 'pyml:echo-versions');
    for (const [version, inputs] of [['3.0.0', ['x', 'z']], ['1.0.0', ['x']], ['', ['x']]] as const) {
      const path = version ? `/v2/models/echo/versions/${version}/infer` : '/v2/models/echo/infer';
      const op = differing.paths[path].post;
      const { example, schema: request } = op.requestBody!.content['application/json'];
      assert.equal((example as { inputs: { name: string }[] }).inputs.map((i) => i.name), inputs, `${path} takes ${inputs.join(', ')}`);
      assert.ok(schema(request.$ref)(example), `${path}'s example matches its schema`);
      const res = await http(both.ready.http, path, example);
      assert.equal([res.status, res.body.model_version], [200, version || '1.0.0'], res.text);
      assert.ok(schema(op.responses['200'].content!['application/json'].schema.$ref)(res.body), `${path}'s answer matches its schema`);
    }
    const versionOne = differing.paths['/v2/models/echo/versions/1.0.0/infer'].post.requestBody!.content['application/json'];
    assert.not.ok(schema(versionOne.schema.$ref)({ inputs: [{ name: 'x', datatype: 'FP32', shape: [1, 2], data: [1, 2] }, { name: 'z', datatype: 'INT32', shape: [1, 1], data: [1] }] }), '1.0.0 takes no z');
  } finally {
    await both?.stop();
    await versions.cleanup();
  }
});

test('an external model (--model NAME=unix://…) is described from its answer to ModelMetadata', async () => {
  let front: Served | undefined;
  try {
    // The iris process the main service started, reached as another service's external model.
    front = await startServe(['--model', `iris=unix://${join(served.ready.socketDir, 'iris.sock')}`]);
    const doc = (await http(front.ready.http, '/v2/models/iris/docs/openapi.json')).body as Doc;
    await validOpenApi(doc, 'the external model\'s document');
    const example = doc.paths['/v2/models/iris/infer'].post.requestBody!.content['application/json'].example as { inputs: { name: string; shape: number[] }[] };
    assert.equal(example.inputs.map((i) => [i.name, i.shape]), [['input', [1, 4]]]);
    const listed = (await http(front.ready.http, '/console/models.json')).body as { models: { signature: { outputs: { name: string }[] }; versions: { version: string; source: string; digest?: string }[] }[] };
    assert.equal(listed.models[0].signature.outputs.map((o) => o.name), ['probabilities', 'label']);
    const [version] = listed.models[0].versions;
    assert.equal([version.version, version.source, version.digest], ['1.0.0', `unix://${join(served.ready.socketDir, 'iris.sock')}`, undefined]);
  } finally {
    await front?.stop();
  }
});

test('--no-console: no console, documents or console JSON; the V2 routes and /metrics stay', async () => {
  let bare: Served | undefined;
  try {
    bare = await startServe([built.images.iris, '--no-console']);
    for (const path of ['/', '/v2/docs/openapi.json', '/v2/models/iris/docs/openapi.json', '/console/models.json', '/console/stats.json']) {
      assert.is((await http(bare.ready.http, path)).status, 404, path);
    }
    assert.is((await http(bare.ready.http, '/v2/health/ready')).status, 200);
    assert.is((await http(bare.ready.http, '/metrics')).status, 200);
    const answer = await http(bare.ready.http, '/v2/models/iris/infer', { inputs: [{ name: 'input', datatype: 'FP32', shape: [1, 4], data: [5.1, 3.5, 1.4, 0.2] }] });
    assert.equal(answer.body.outputs[1].data, [0]);
  } finally {
    await bare?.stop();
  }
});

test.run();
