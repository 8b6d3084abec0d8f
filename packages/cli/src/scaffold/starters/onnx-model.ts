/**
 * The onnx starter model of `pyml init`: a tiny, fixed linear classifier (3 features → 2 classes), so a new
 * project builds and predicts before its author brings a model.
 *
 * Graph: input FP32 [N,3] → MatMul W → Add B → Softmax → `probabilities` FP32 [N,2]; ArgMax → `label` INT64 [N].
 *
 * Encoded here by hand (field numbers from onnx.proto) rather than through the onnx plugin's protobuf schema:
 * the CLI lists no plugin as a dependency, and twenty lines of varints cost less than loading protobufjs.
 * Fields are written in field-number order, as protobufjs writes them, so the bytes are the ones the plugin's
 * encoder would give.
 */
import { mkdir, rename, writeFile } from 'node:fs/promises';
import { dirname } from 'node:path';

const W = [0.8, -0.8, -0.5, 0.5, 0.3, -0.3]; // [3, 2], row-major
const B = [0.1, -0.1];

/** One field of a message: a varint, a string, raw bytes, or an already encoded nested message. */
type Field = [number, number | string | Uint8Array];

const encoder = new TextEncoder();

function varint(value: number): number[] {
  const out: number[] = [];
  let v = BigInt.asUintN(64, BigInt(value)); // negative int64s are ten bytes of two's complement
  do {
    let byte = Number(v & 0x7fn);
    v >>= 7n;
    if (v) byte |= 0x80;
    out.push(byte);
  } while (v);
  return out;
}

/** Encodes a message; fields sorted by number (stable, so repeated fields keep their order). */
function message(...fields: (Field | Field[])[]): Uint8Array {
  const flat = fields.flatMap((f) => (typeof f[0] === 'number' ? [f as Field] : (f as Field[])));
  flat.sort((a, b) => a[0] - b[0]);
  const parts: number[] = [];
  for (const [no, value] of flat) {
    if (typeof value === 'number') {
      parts.push(...varint(no << 3), ...varint(value));
    } else {
      const bytes = typeof value === 'string' ? encoder.encode(value) : value;
      parts.push(...varint((no << 3) | 2), ...varint(bytes.length), ...bytes);
    }
  }
  return Uint8Array.from(parts);
}

const FLOAT = 1; // TensorProto.DataType
const INT64 = 7;
const ATTRIBUTE_INT = 2; // AttributeProto.AttributeType

function floatTensor(name: string, dims: number[], values: number[]): Uint8Array {
  const raw = new Uint8Array(values.length * 4);
  const view = new DataView(raw.buffer);
  values.forEach((v, i) => view.setFloat32(i * 4, v, true)); // ONNX raw_data is little-endian
  // TensorProto: dims = 1 (repeated, unpacked in proto2), data_type = 2, name = 8, raw_data = 9
  return message(dims.map((d): Field => [1, d]), [2, FLOAT], [8, name], [9, raw]);
}

function valueInfo(name: string, elemType: number, dims: (number | string)[]): Uint8Array {
  // TensorShapeProto.Dimension: dim_value = 1, dim_param = 2
  const shape = message(dims.map((d): Field => [1, message(typeof d === 'number' ? [1, d] : [2, d])]));
  // ValueInfoProto: name = 1, type = 2; TypeProto: tensor_type = 1; TypeProto.Tensor: elem_type = 1, shape = 2
  return message([1, name], [2, message([1, message([1, elemType], [2, shape])])]);
}

/** AttributeProto: name = 1, i = 3, type = 20. */
const intAttribute = (name: string, i: number) => message([1, name], [3, i], [20, ATTRIBUTE_INT]);

/** NodeProto: input = 1, output = 2, name = 3, op_type = 4, attribute = 5. */
function node(opType: string, name: string, inputs: string[], outputs: string[], attributes: Uint8Array[] = []): Uint8Array {
  return message(inputs.map((i): Field => [1, i]), outputs.map((o): Field => [2, o]), [3, name], [4, opType], attributes.map((a): Field => [5, a]));
}

/** The model's bytes (an ONNX ModelProto, IR version 7, opset 13). */
export function onnxStarterModel(): Uint8Array {
  // GraphProto: node = 1, name = 2, initializer = 5, input = 11, output = 12
  const graph = message(
    [
      [1, node('MatMul', 'matmul', ['input', 'W'], ['xw'])],
      [1, node('Add', 'bias', ['xw', 'B'], ['logits'])],
      [1, node('Softmax', 'softmax', ['logits'], ['probabilities'], [intAttribute('axis', 1)])],
      [1, node('ArgMax', 'argmax', ['probabilities'], ['label'], [intAttribute('axis', 1), intAttribute('keepdims', 0)])],
    ],
    [2, 'linear_classifier'],
    [[5, floatTensor('W', [3, 2], W)], [5, floatTensor('B', [2], B)]],
    [11, valueInfo('input', FLOAT, ['N', 3])],
    [[12, valueInfo('probabilities', FLOAT, ['N', 2])], [12, valueInfo('label', INT64, ['N'])]],
  );
  // ModelProto: ir_version = 1, producer_name = 2, graph = 7, opset_import = 8 (OperatorSetIdProto: domain = 1, version = 2)
  return message([1, 7], [2, 'pyml-init'], [7, graph], [8, message([1, ''], [2, 13])]);
}

/** Writes the model to `out` (a temporary name, then rename: never a half-written file). */
export async function writeOnnxStarter(out: string): Promise<void> {
  await mkdir(dirname(out), { recursive: true });
  await writeFile(`${out}.tmp`, onnxStarterModel());
  await rename(`${out}.tmp`, out);
}
