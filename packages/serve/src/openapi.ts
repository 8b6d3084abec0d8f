import type { DataType, Signature } from '@pyml/contract';
import type { ModelEntry } from './console/catalog.ts';
import { type JsonSchema, dataSchema, dataSchemaName, exampleRequest, tensorSchema } from './openapi-tensors.ts';

/**
 * OpenAPI 3.1 documents of `pyml serve`'s REST API (the Open Inference Protocol's HTTP/REST form): one for the
 * whole service (`/v2/docs/openapi.json`) and one per model (`/v2/models/NAME/docs/openapi.json`), with each
 * model's request and response bodies typed from its signature and a worked example request, so client
 * generators and API tools take them as they are.
 */

export type OpenApiDocument = Record<string, unknown> & { paths: Record<string, unknown>; components: { schemas: Record<string, JsonSchema> } };

const ERROR_SCHEMA: JsonSchema = {
  type: 'object', required: ['error'], properties: { error: { type: 'string', description: 'What was wrong, naming the tensor or setting' } },
};

const jsonContent = (schema: JsonSchema, example?: unknown) => ({ 'application/json': { schema, ...(example === undefined ? {} : { example }) } });
const errorResponse = (description: string) => ({ description, content: jsonContent({ $ref: '#/components/schemas/Error' }) });

/** Component and operation names are made of letters, digits, '.', '-' and '_' only; a model's name may not be. */
const safeName = (name: string) => name.replace(/[^A-Za-z0-9._-]/g, '_');

/** The URL path segment of a model name or version. */
const segment = (s: string) => encodeURIComponent(s);

function servicePaths(): Record<string, unknown> {
  const flag = (key: string, description: string) => ({
    type: 'object', required: [key], properties: { [key]: { type: 'boolean' } }, description,
  });
  return {
    '/v2/health/live': { get: { operationId: 'serverLive', summary: 'The service is up', tags: ['health'], responses: { 200: { description: 'Live', content: jsonContent(flag('live', 'Always true')) } } } },
    '/v2/health/ready': {
      get: {
        operationId: 'serverReady', summary: 'Every model takes calls (running, or idle and started by the first call)', tags: ['health'],
        responses: { 200: { description: 'Ready', content: jsonContent(flag('ready', 'true')) }, 400: { description: 'Not ready', content: jsonContent(flag('ready', 'false')) } },
      },
    },
    '/v2': {
      get: {
        operationId: 'serverMetadata', summary: 'Server name, version and extensions', tags: ['health'],
        responses: {
          200: {
            description: 'Server metadata',
            content: jsonContent({ type: 'object', required: ['name', 'version', 'extensions'], properties: { name: { type: 'string' }, version: { type: 'string' }, extensions: { type: 'array', items: { type: 'string' } } } }),
          },
        },
      },
    },
    '/metrics': {
      get: {
        operationId: 'metrics', summary: 'Prometheus metrics: requests, errors and latency per model; model readiness', tags: ['health'],
        responses: { 200: { description: 'Prometheus text exposition format', content: { 'text/plain': { schema: { type: 'string' } } } } },
      },
    },
  };
}

/** Request and response schemas of one signature (a model's, or one version's), under `prefix`, and its example. */
function signatureSchemas(model: string, signature: Signature, prefix: string): { schemas: Record<string, JsonSchema>; example: unknown } {
  const data = (dtype: DataType) => `#/components/schemas/${dataSchemaName(dtype)}`;
  const example = exampleRequest(signature);
  const schemas: Record<string, JsonSchema> = {
    [`${prefix}.InferRequest`]: {
      type: 'object', required: ['inputs'],
      description: `A request to ${model}: every input of its signature, by name`,
      properties: {
        id: { type: 'string', description: 'Echoed in the response' },
        parameters: { type: 'object' },
        inputs: {
          type: 'array', minItems: signature.inputs.length, maxItems: signature.inputs.length,
          items: signature.inputs.length ? { oneOf: signature.inputs.map((s) => tensorSchema(s, data(s.dtype))) } : {},
        },
        outputs: {
          type: 'array', description: 'Outputs to return (default: all)',
          items: { type: 'object', required: ['name'], properties: { name: { enum: signature.outputs.map((s) => s.name) }, parameters: { type: 'object' } } },
        },
      },
      examples: [example],
    },
    [`${prefix}.InferResponse`]: {
      type: 'object', required: ['model_name', 'outputs'],
      properties: {
        model_name: { const: model },
        model_version: { type: 'string' },
        id: { type: 'string' },
        parameters: { type: 'object' },
        outputs: { type: 'array', items: signature.outputs.length ? { oneOf: signature.outputs.map((s) => tensorSchema(s, data(s.dtype))) } : {} },
      },
    },
  };
  return { schemas, example };
}

const NO_SIGNATURE: Signature = { inputs: [], outputs: [] };

/**
 * Paths and schemas of one model: metadata, readiness and inference, typed by the signature of the version
 * unversioned requests go to by the version policy; and the same under /versions/{model_version}: one
 * templated path when every version has that signature, else concrete paths per version, each typed by its own.
 */
function modelParts(model: ModelEntry, id: string): { paths: Record<string, unknown>; schemas: Record<string, JsonSchema>; dtypes: Set<DataType> } {
  const tag = model.name;
  const base = `/v2/models/${segment(model.name)}`;
  const signature = model.signature ?? NO_SIGNATURE;
  const dtypes = new Set<DataType>();
  const schemas: Record<string, JsonSchema> = {
    [`${id}.Metadata`]: {
      type: 'object', required: ['name', 'versions', 'platform', 'inputs', 'outputs'],
      properties: {
        name: { const: model.name }, versions: { type: 'array', items: { type: 'string' } }, platform: { type: 'string' },
        inputs: { type: 'array', items: { $ref: '#/components/schemas/TensorMetadata' } }, outputs: { type: 'array', items: { $ref: '#/components/schemas/TensorMetadata' } },
      },
    },
  };
  /** The schemas of `sig` under `prefix`: their references and the example. */
  const typed = (sig: Signature, prefix: string) => {
    for (const s of [...sig.inputs, ...sig.outputs]) dtypes.add(s.dtype);
    const parts = signatureSchemas(model.name, sig, prefix);
    Object.assign(schemas, parts.schemas);
    const ref = (what: string) => ({ $ref: `#/components/schemas/${prefix}.${what}` });
    return { request: ref('InferRequest'), response: ref('InferResponse'), example: parts.example };
  };
  const byDefault = typed(signature, id);
  const named = model.versions.map((v) => v.version).filter((v) => v !== '');
  const versionParameter = { name: 'model_version', in: 'path', required: true, schema: named.length ? { enum: named } : { type: 'string' }, description: 'A version this service serves' };

  type Typed = typeof byDefault;
  const infer = (operationId: string, io: Typed, about: string, withParameter = false) => ({
    post: {
      operationId, tags: [tag], summary: `Run ${model.name}${about}`, ...(withParameter ? { parameters: [versionParameter] } : {}),
      requestBody: { required: true, content: jsonContent(io.request, io.example) },
      responses: {
        200: { description: 'The outputs', content: jsonContent(io.response) },
        400: errorResponse('A bad request: the message names the tensor and what was expected'),
        404: errorResponse('No such model or version'),
        408: errorResponse('The request took longer than the deadline'),
        413: errorResponse('The request is over the size limit'),
        429: errorResponse('Too many requests in flight for the model'),
        503: errorResponse('The model is unavailable (failed to start, or restarting)'),
      },
    },
  });
  const metadata = (operationId: string, about: string, withParameter = false) => ({
    get: {
      operationId, tags: [tag], summary: `${model.name}'s signature and versions${about}`, ...(withParameter ? { parameters: [versionParameter] } : {}),
      responses: { 200: { description: 'Model metadata', content: jsonContent({ $ref: `#/components/schemas/${id}.Metadata` }) }, 404: errorResponse('No such model or version'), 503: errorResponse('The model is unavailable') },
    },
  });
  const ready = (operationId: string, about: string, withParameter = false) => ({
    get: {
      operationId, tags: [tag], summary: `Whether ${model.name}${about} takes calls`, ...(withParameter ? { parameters: [versionParameter] } : {}),
      responses: {
        200: { description: 'Ready', content: jsonContent({ $ref: '#/components/schemas/ModelReady' }) },
        400: { description: 'Not ready', content: jsonContent({ $ref: '#/components/schemas/ModelReady' }) },
      },
    },
  });
  const paths: Record<string, unknown> = {
    [base]: metadata(`${id}.metadata`, ''),
    [`${base}/ready`]: ready(`${id}.ready`, ''),
    [`${base}/infer`]: infer(`${id}.infer`, byDefault, model.versions.length > 1 ? ` (by default version ${model.defaultVersion})` : ''),
  };
  const same = (v: { signature?: Signature }) => JSON.stringify(v.signature ?? NO_SIGNATURE) === JSON.stringify(signature);
  if (model.versions.every(same)) {
    Object.assign(paths, {
      [`${base}/versions/{model_version}`]: metadata(`${id}.versionMetadata`, ' (the version named)', true),
      [`${base}/versions/{model_version}/ready`]: ready(`${id}.versionReady`, ' (the version named)', true),
      [`${base}/versions/{model_version}/infer`]: infer(`${id}.versionInfer`, byDefault, ' (the version named)', true),
    });
  } else {
    // Versions with different signatures: each its own operations, typed by its own signature.
    const ids = new Set<string>();
    for (const v of model.versions.filter((version) => version.version !== '')) {
      let vid = `${id}.version-${safeName(v.version)}`;
      while (ids.has(vid)) vid += '_';
      ids.add(vid);
      const path = `${base}/versions/${segment(v.version)}`;
      const about = ` ${v.version}`;
      Object.assign(paths, {
        [path]: metadata(`${vid}.metadata`, about),
        [`${path}/ready`]: ready(`${vid}.ready`, about),
        [`${path}/infer`]: infer(`${vid}.infer`, same(v) ? byDefault : typed(v.signature ?? NO_SIGNATURE, vid), about),
      });
    }
  }
  return { paths, schemas, dtypes };
}

/** Schemas every document shares, and the data schema of each datatype used. */
function sharedSchemas(dtypes: Set<DataType>): Record<string, JsonSchema> {
  const schemas: Record<string, JsonSchema> = {
    Error: ERROR_SCHEMA,
    ModelReady: { type: 'object', required: ['name', 'ready'], properties: { name: { type: 'string' }, ready: { type: 'boolean' } } },
    TensorMetadata: {
      type: 'object', required: ['name', 'datatype', 'shape'],
      properties: { name: { type: 'string' }, datatype: { type: 'string' }, shape: { type: 'array', items: { type: 'integer', minimum: -1 }, description: '-1: any size' } },
    },
  };
  for (const dtype of [...dtypes].sort()) schemas[dataSchemaName(dtype)] = dataSchema(dtype, `#/components/schemas/${dataSchemaName(dtype)}`);
  return schemas;
}

function modelDescription(model: ModelEntry): string {
  const versions = model.versions.map((v) => `${v.version || '(unversioned)'}${v.digest ? ` (image ${v.digest})` : ''}`).join(', ');
  const io = (specs: { name: string; dtype: string; shape: number[] }[]) => specs.map((s) => `${s.name} ${s.dtype} [${s.shape.join(', ')}]`).join('; ') || 'none';
  return `${model.kind} model; versions: ${versions}. Inputs: ${io(model.signature?.inputs ?? [])}. Outputs: ${io(model.signature?.outputs ?? [])}.`
    + (model.signature ? '' : ' Its signature is not known yet (an external model that has not answered ModelMetadata).');
}

/** The whole service: health, server metadata, metrics, and every model's paths. */
export function serviceDocument(models: ModelEntry[], serverVersion: string): OpenApiDocument {
  const paths: Record<string, unknown> = servicePaths();
  const schemas: Record<string, JsonSchema> = {};
  const dtypes = new Set<DataType>();
  const ids = new Set<string>();
  for (const model of models) {
    // Two external models' names may sanitise alike: their component and operation names must not clash.
    let id = safeName(model.name);
    while (ids.has(id)) id += '_';
    ids.add(id);
    const parts = modelParts(model, id);
    Object.assign(paths, parts.paths);
    Object.assign(schemas, parts.schemas);
    for (const d of parts.dtypes) dtypes.add(d);
  }
  return {
    openapi: '3.1.0',
    info: {
      title: 'pyml serve', version: serverVersion,
      description: `The Open Inference Protocol (KServe V2) REST API of this service, serving ${models.map((m) => m.name).join(', ') || 'no model'}. `
        + 'Each model also has its own document at /v2/models/NAME/docs/openapi.json.',
    },
    tags: [{ name: 'health', description: 'Liveness, readiness, server metadata and metrics' }, ...models.map((m) => ({ name: m.name, description: modelDescription(m) }))],
    paths,
    components: { schemas: { ...sharedSchemas(dtypes), ...schemas } },
  };
}

/** One model: its metadata, readiness and inference paths, typed from its signature, with an example request. */
export function modelDocument(model: ModelEntry): OpenApiDocument {
  const parts = modelParts(model, safeName(model.name));
  const version = model.versions.map((v) => v.version).filter(Boolean).join(', ') || 'unversioned';
  return {
    openapi: '3.1.0',
    info: { title: `${model.name} (pyml serve)`, version, description: modelDescription(model) },
    tags: [{ name: model.name, description: modelDescription(model) }],
    paths: parts.paths,
    components: { schemas: { ...sharedSchemas(parts.dtypes), ...parts.schemas } },
  };
}
