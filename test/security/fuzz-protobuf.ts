/**
 * A few lines of protobuf writing for the fuzz suite's gRPC messages, independent of the runtime's codec under
 * test: tags, varints (int64 as two's complement), length-delimited fields.
 */

export type Field = [number, 'varint', bigint | number] | [number, 'bytes', Uint8Array | string | Field[]];

function varint(value: bigint): Buffer {
  let v = BigInt.asUintN(64, value);
  const out: number[] = [];
  do {
    let byte = Number(v & 0x7fn);
    v >>= 7n;
    if (v) byte |= 0x80;
    out.push(byte);
  } while (v);
  return Buffer.from(out);
}

/** Encodes fields in order (a nested Field[] is a sub-message). */
export function message(fields: Field[]): Buffer {
  const parts: Buffer[] = [];
  for (const [number, kind, value] of fields) {
    if (kind === 'varint') {
      parts.push(varint(BigInt(number << 3)), varint(BigInt(value)));
      continue;
    }
    const body = typeof value === 'string' ? Buffer.from(value, 'utf8') : Array.isArray(value) ? message(value) : Buffer.from(value);
    parts.push(varint(BigInt((number << 3) | 2)), varint(BigInt(body.length)), body);
  }
  return Buffer.concat(parts);
}

/** A packed repeated int64 (a shape). */
export function packedInt64(values: (number | bigint)[]): Buffer {
  return Buffer.concat(values.map((v) => varint(BigInt(v))));
}

export function fp32(values: number[]): Buffer {
  const out = Buffer.alloc(values.length * 4);
  values.forEach((v, i) => out.writeFloatLE(v, i * 4));
  return out;
}

export interface TensorSpec {
  name: string | Uint8Array;
  datatype: string | Uint8Array;
  shape: (number | bigint)[];
  /** fp32_contents (field 6 of InferTensorContents), or another contents field. */
  contents?: { field: number; bytes: Uint8Array };
}

/** A ModelInferRequest: 1 model_name, 3 id, 5 inputs, 6 requested outputs, 7 raw_input_contents. */
export function inferRequest(req: { model?: string | Uint8Array; id?: string | Uint8Array; inputs: TensorSpec[]; outputs?: (string | Uint8Array)[]; raw?: Uint8Array[] }): Buffer {
  const fields: Field[] = [];
  if (req.model !== undefined) fields.push([1, 'bytes', req.model]);
  if (req.id !== undefined) fields.push([3, 'bytes', req.id]);
  for (const t of req.inputs) {
    const tensor: Field[] = [[1, 'bytes', t.name], [2, 'bytes', t.datatype], [3, 'bytes', packedInt64(t.shape)]];
    if (t.contents) tensor.push([5, 'bytes', [[t.contents.field, 'bytes', t.contents.bytes]]]);
    fields.push([5, 'bytes', tensor]);
  }
  for (const o of req.outputs ?? []) fields.push([6, 'bytes', [[1, 'bytes', o]]]);
  for (const r of req.raw ?? []) fields.push([7, 'bytes', r]);
  return message(fields);
}
