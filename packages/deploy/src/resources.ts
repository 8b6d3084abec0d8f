import { readFile } from 'node:fs/promises';
import yaml from 'js-yaml';

/** A container's requests and limits, as Kubernetes spells them (`cpu: 500m`, `memory: 512Mi`). */
export interface ResourceRequirements {
  requests?: Record<string, string>;
  limits?: Record<string, string>;
}

/**
 * `--resources FILE` (YAML or JSON): per model by name, a default for every model, and the front.
 *   front:   { requests: { cpu: 100m, memory: 128Mi } }
 *   default: { requests: { cpu: "1" } }
 *   models:  { iris: { requests: { memory: 1Gi }, limits: { memory: 2Gi } } }
 */
export interface ResourcesFile {
  front?: ResourceRequirements;
  default?: ResourceRequirements;
  models?: Record<string, ResourceRequirements>;
}

// Kubernetes' quantity grammar (resource.Quantity): a decimal number with a binary or decimal SI suffix or exponent.
const QUANTITY = /^[+]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+|Ki|Mi|Gi|Ti|Pi|Ei|n|u|m|k|M|G|T|P|E)?$/;
const RESOURCE_NAME = /^(?:[a-z0-9]([-a-z0-9.]*[a-z0-9])?\/)?[a-z0-9A-Z]([-a-z0-9A-Z_.]*[a-z0-9A-Z])?$/;

export const FRONT_DEFAULT: ResourceRequirements = { requests: { cpu: '100m', memory: '128Mi' }, limits: { memory: '512Mi' } };

/**
 * A model container's defaults: half a core, and memory sized from its weights (a model in memory takes
 * about twice its file size once loaded, plus the Node runtime). No CPU limit: throttling a latency-bound
 * server hurts more than it protects; the request is what the scheduler and the autoscaler use.
 */
export function modelDefault(weightsBytes: number): ResourceRequirements {
  const mib = 256 + 64 * Math.ceil((2 * weightsBytes) / (64 * 1024 * 1024));
  return { requests: { cpu: '500m', memory: `${mib}Mi` }, limits: { memory: `${2 * mib}Mi` } };
}

/** Later sources win per resource name: defaults < the image's own `deploy.resources` < the file's default < the file's entry. */
export function mergeResources(...layers: (ResourceRequirements | undefined)[]): ResourceRequirements {
  const out: ResourceRequirements = {};
  for (const layer of layers) {
    if (!layer) continue;
    if (layer.requests) out.requests = { ...out.requests, ...layer.requests };
    if (layer.limits) out.limits = { ...out.limits, ...layer.limits };
  }
  return out;
}

export async function readResourcesFile(file: string): Promise<ResourcesFile> {
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (error) {
    throw new Error(`--resources ${file}: ${(error as NodeJS.ErrnoException).code === 'ENOENT' ? 'no such file' : (error as Error).message}`);
  }
  let value: unknown;
  try {
    value = yaml.load(text, { filename: file });
  } catch (error) {
    throw new Error(`--resources ${file}: not YAML or JSON: ${(error as Error).message.split('\n')[0]}`);
  }
  return checkResourcesFile(value ?? {}, file);
}

export function checkResourcesFile(value: unknown, where: string): ResourcesFile {
  const obj = record(value, where);
  for (const key of Object.keys(obj)) {
    if (!['front', 'default', 'models'].includes(key)) throw new Error(`${where}: unknown key '${key}' (expected front, default, models)`);
  }
  const out: ResourcesFile = {};
  if (obj.front !== undefined) out.front = checkRequirements(obj.front, `${where}: front`);
  if (obj.default !== undefined) out.default = checkRequirements(obj.default, `${where}: default`);
  if (obj.models !== undefined) {
    out.models = {};
    for (const [name, r] of Object.entries(record(obj.models, `${where}: models`))) out.models[name] = checkRequirements(r, `${where}: models.${name}`);
  }
  return out;
}

/** Checks one `{requests, limits}` object; used for the file and for an image's `deploy.resources`. */
export function checkRequirements(value: unknown, where: string): ResourceRequirements {
  const obj = record(value, where);
  const out: ResourceRequirements = {};
  for (const [key, inner] of Object.entries(obj)) {
    if (key !== 'requests' && key !== 'limits') throw new Error(`${where}: unknown key '${key}' (expected requests, limits)`);
    const amounts: Record<string, string> = {};
    for (const [resource, amount] of Object.entries(record(inner, `${where}.${key}`))) {
      if (!RESOURCE_NAME.test(resource)) throw new Error(`${where}.${key}: '${resource}' is not a resource name (e.g. cpu, memory, nvidia.com/gpu)`);
      const text = typeof amount === 'number' ? String(amount) : amount;
      if (typeof text !== 'string' || !QUANTITY.test(text)) {
        throw new Error(`${where}.${key}.${resource}: ${JSON.stringify(amount)} is not a Kubernetes quantity (e.g. 500m, 2, 512Mi, 1Gi)`);
      }
      amounts[resource] = text;
    }
    out[key] = amounts;
  }
  return out;
}

function record(value: unknown, where: string): Record<string, unknown> {
  if (value === null || typeof value !== 'object' || Array.isArray(value)) throw new Error(`${where}: expected a mapping, got ${Array.isArray(value) ? 'a list' : JSON.stringify(value)}`);
  return value as Record<string, unknown>;
}
