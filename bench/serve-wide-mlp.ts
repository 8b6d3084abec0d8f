/**
 * A wide MLP as ONNX, for the batching benchmark: `input` FP32 [N,IN] → MatMul W1 [IN,HIDDEN] → Relu → MatMul
 * W2 [HIDDEN,OUT] → `output` FP32 [N,OUT]. One row reads all of W1 (memory-bound: about 1 ms for 1024×6144, the
 * size bench/serve uses), so merging rows into one call pays off. Deterministic weights.
 */
import { writeFile } from 'node:fs/promises';
import { onnxTypes, OnnxDataType } from '@pyml/plugin-onnx/onnx-schema';

export interface WideMlp { inputs: number; hidden: number; outputs: number }

function weights(rows: number, cols: number, seed: number): Buffer {
  const out = Buffer.alloc(rows * cols * 4);
  let state = seed >>> 0;
  const scale = 1 / Math.sqrt(rows);
  for (let i = 0; i < rows * cols; i++) {
    state = (Math.imul(state, 1664525) + 1013904223) >>> 0;
    out.writeFloatLE(((state / 4294967296) * 2 - 1) * scale, i * 4);
  }
  return out;
}

export async function writeWideMlp(path: string, { inputs, hidden, outputs }: WideMlp): Promise<void> {
  const { ModelProto } = onnxTypes;
  const type = (dims: (number | string)[]) => ({ tensor_type: { elem_type: OnnxDataType.FLOAT, shape: { dim: dims.map((d) => (typeof d === 'number' ? { dim_value: d } : { dim_param: d })) } } });
  const bytes = ModelProto.encode(ModelProto.fromObject({
    ir_version: 8, producer_name: 'pyml-bench-serve', opset_import: [{ domain: '', version: 13 }],
    graph: {
      name: 'wide_mlp',
      node: [
        { op_type: 'MatMul', name: 'fc1', input: ['input', 'W1'], output: ['h'] },
        { op_type: 'Relu', name: 'relu', input: ['h'], output: ['a'] },
        { op_type: 'MatMul', name: 'fc2', input: ['a', 'W2'], output: ['output'] },
      ],
      initializer: [
        { name: 'W1', dims: [inputs, hidden], data_type: OnnxDataType.FLOAT, raw_data: weights(inputs, hidden, 1) },
        { name: 'W2', dims: [hidden, outputs], data_type: OnnxDataType.FLOAT, raw_data: weights(hidden, outputs, 2) },
      ],
      input: [{ name: 'input', type: type(['N', inputs]) }],
      output: [{ name: 'output', type: type(['N', outputs]) }],
    },
  })).finish();
  await writeFile(path, bytes);
}
