/** Small ONNX models built in tests with protobufjs, and a hook context for calling plugin hooks directly. */
import { createHash } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { HookContext, ResolvedConfig } from '@pyml/core/types';
import type { InitContext, Logger } from '@pyml/contract';
import { onnxTypes, OnnxDataType } from '@pyml/plugin-onnx/onnx-schema';

export const IRIS_DIR = new URL('../../examples/onnx-iris/', import.meta.url).pathname;
export const IRIS_MODEL = join(IRIS_DIR, 'weights', 'model.onnx');

const made: string[] = [];
// Temp dirs go when the test process ends (the big-model test leaves ~100 MB otherwise).
process.on('exit', () => { for (const dir of made) rmSync(dir, { recursive: true, force: true }); });

export function tempDir(prefix = 'pyml-onnx-'): string {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  made.push(dir);
  return dir;
}

export const tensorType = (elemType: number, dims?: (number | string)[]) => ({
  tensor_type: { elem_type: elemType, ...(dims ? { shape: { dim: dims.map((d) => (typeof d === 'number' ? { dim_value: d } : { dim_param: d })) } } : {}) },
});

export function encodeModel(graph: Record<string, unknown>, opsets = [{ domain: '', version: 13 }]): Uint8Array {
  const { ModelProto } = onnxTypes;
  const model = { ir_version: 8, opset_import: opsets, producer_name: 'pyml-test', graph };
  const problem = ModelProto.verify(model);
  if (problem) throw new Error(problem);
  return ModelProto.encode(ModelProto.fromObject(model)).finish();
}

export function writeModel(dir: string, name: string, graph: Record<string, unknown>, opsets?: { domain: string; version: number }[]): string {
  const path = join(dir, name);
  writeFileSync(path, encodeModel(graph, opsets));
  return path;
}

/** An Identity model per element type: input `x` → output `y`, shape [N, 2]. */
export function identityGraph(elemType: number) {
  return {
    name: 'identity',
    node: [{ op_type: 'Identity', input: ['x'], output: ['y'] }],
    input: [{ name: 'x', type: tensorType(elemType, ['N', 2]) }],
    output: [{ name: 'y', type: tensorType(elemType, ['N', 2]) }],
  };
}

export { OnnxDataType };

export const silentLogger: Logger = { debug() {}, info() {}, warn() {}, error() {} };

export function hookContext(root: string, weights: string[], extra: Partial<ResolvedConfig> = {}): HookContext & { logs: string[] } {
  const logs: string[] = [];
  const platform = { os: 'linux' as const, architecture: 'amd64' as const };
  return {
    config: {
      configFile: join(root, 'pyml.config.ts'), root, name: 't', version: '0.0.0', kind: 'tensor', weights, plugins: [],
      image: { base: 'pyml/node', tags: [], labels: {}, platform }, serving: {}, ...extra,
    },
    platform,
    log: (m: string) => { logs.push(m); },
    // Never inside the repo: some tests pass the example directory as root.
    cacheDir: join(tmpdir(), 'pyml-onnx-test-cache', createHash('sha256').update(root).digest('hex').slice(0, 16)),
    logs,
  };
}

/** The environment the image's entrypoint hands an adapter factory. */
export function adapterEnv(weightsDir: string): Pick<InitContext, 'weightsDir' | 'weightsPath' | 'signature' | 'logger'> {
  return { weightsDir, weightsPath: (f) => join(weightsDir, f), signature: { inputs: [], outputs: [] }, logger: silentLogger };
}

/** A scikit-learn-style classifier head: `label` INT64 [N] and ZipMap's `output_probability` seq(map(int64, tensor(float))). */
export function zipMapGraph() {
  return {
    name: 'classifier',
    node: [
      { op_type: 'ArgMax', input: ['x'], output: ['label'], attribute: [{ name: 'axis', type: 2, i: 1 }, { name: 'keepdims', type: 2, i: 0 }] },
      { op_type: 'ZipMap', domain: 'ai.onnx.ml', input: ['x'], output: ['output_probability'], attribute: [{ name: 'classlabels_int64s', type: 7, ints: [0, 1, 2] }] },
    ],
    input: [{ name: 'x', type: tensorType(OnnxDataType.FLOAT, ['N', 3]) }],
    output: [
      { name: 'label', type: tensorType(OnnxDataType.INT64, ['N']) },
      { name: 'output_probability', type: { sequence_type: { elem_type: { map_type: { key_type: OnnxDataType.INT64, value_type: tensorType(OnnxDataType.FLOAT) } } } } },
    ],
  };
}
export const ML_OPSETS = [{ domain: '', version: 13 }, { domain: 'ai.onnx.ml', version: 1 }];
