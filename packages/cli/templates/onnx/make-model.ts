/**
 * Writes weights/model.onnx: a tiny, fixed linear classifier (3 features → 2 classes), so the project builds and
 * predicts before you bring your own model. Replace weights/model.onnx with your exported model (torch.onnx.export,
 * skl2onnx, tf2onnx, ...) and delete this file.
 *
 *   node --import tsx make-model.ts [OUT.onnx]
 *
 * Graph: input FP32 [N,3] → MatMul W → Add B → Softmax → `probabilities` FP32 [N,2]; ArgMax → `label` INT64 [N].
 */
import { mkdirSync, renameSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { onnxTypes, OnnxAttributeType, OnnxDataType } from '@pyml/plugin-onnx/onnx-schema';

const W = [0.8, -0.8, -0.5, 0.5, 0.3, -0.3]; // [3, 2], row-major
const B = [0.1, -0.1];

function floatTensor(name: string, dims: number[], values: number[]) {
  const raw = new Uint8Array(values.length * 4);
  const view = new DataView(raw.buffer);
  values.forEach((v, i) => view.setFloat32(i * 4, v, true)); // ONNX raw_data is little-endian
  return { name, dims, data_type: OnnxDataType.FLOAT, raw_data: raw };
}

const tensorType = (elemType: number, dims: (number | string)[]) => ({
  tensor_type: { elem_type: elemType, shape: { dim: dims.map((d) => (typeof d === 'number' ? { dim_value: d } : { dim_param: d })) } },
});
const intAttr = (name: string, i: number) => ({ name, type: OnnxAttributeType.INT, i });

export function makeModel(): Uint8Array {
  const model = {
    ir_version: 7,
    opset_import: [{ domain: '', version: 13 }],
    producer_name: 'pyml-init',
    graph: {
      name: 'linear_classifier',
      node: [
        { op_type: 'MatMul', name: 'matmul', input: ['input', 'W'], output: ['xw'] },
        { op_type: 'Add', name: 'bias', input: ['xw', 'B'], output: ['logits'] },
        { op_type: 'Softmax', name: 'softmax', input: ['logits'], output: ['probabilities'], attribute: [intAttr('axis', 1)] },
        { op_type: 'ArgMax', name: 'argmax', input: ['probabilities'], output: ['label'], attribute: [intAttr('axis', 1), intAttr('keepdims', 0)] },
      ],
      initializer: [floatTensor('W', [3, 2], W), floatTensor('B', [2], B)],
      input: [{ name: 'input', type: tensorType(OnnxDataType.FLOAT, ['N', 3]) }],
      output: [
        { name: 'probabilities', type: tensorType(OnnxDataType.FLOAT, ['N', 2]) },
        { name: 'label', type: tensorType(OnnxDataType.INT64, ['N']) },
      ],
    },
  };
  const { ModelProto } = onnxTypes;
  const problem = ModelProto.verify(model);
  if (problem) throw new Error(`make-model: invalid ModelProto: ${problem}`);
  return ModelProto.encode(ModelProto.fromObject(model)).finish();
}

/** Writes the model to `out` (temp name, then rename: never a half-written file). */
export async function writeModel(out: string): Promise<void> {
  mkdirSync(dirname(out), { recursive: true });
  writeFileSync(`${out}.tmp`, makeModel());
  renameSync(`${out}.tmp`, out);
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  const out = process.argv[2] ?? join(dirname(fileURLToPath(import.meta.url)), 'weights', 'model.onnx');
  await writeModel(out);
  console.log(`wrote ${out}`);
}
