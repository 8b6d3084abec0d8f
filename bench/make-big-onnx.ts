/**
 * Writes a valid ONNX model with ~N MB of random float32 weights, streamed to disk.
 *
 *   npx tsx bench/make-big-onnx.ts --mb 200 [--seed 1] [--describe] OUT.onnx
 *
 * --describe then times @pyml/plugin-onnx's streaming read of the file and reports the memory it took.
 *
 * Graph: `input` FP32 [N,1024] → MatMul by initializer W [1024,K] → `output` FP32 [N,K], K chosen from --mb.
 * The small parts are encoded with protobufjs; the protobuf length prefixes around the initializer are written
 * by hand so W's raw_data can be generated and written 1 MB at a time: memory stays flat however big the model.
 * Deterministic: the same --mb and --seed give the same bytes. (onnxruntime refuses protobufs over 2 GB.)
 */
import { open } from 'node:fs/promises';
import { pathToFileURL } from 'node:url';
import { onnxTypes, OnnxDataType } from '@pyml/plugin-onnx/onnx-schema';

const LEN = 2; // protobuf wire type for length-delimited fields
const INPUT_DIM = 1024;
const CHUNK_FLOATS = 256 * 1024; // 1 MB of float32 per write

function varint(n: number): Buffer {
  const bytes: number[] = [];
  while (n >= 0x80) { bytes.push((n % 0x80) | 0x80); n = Math.floor(n / 0x80); }
  bytes.push(n);
  return Buffer.from(bytes);
}
const key = (field: number) => varint(field * 8 + LEN);
/** Size of a length-delimited field whose body is `bodyLength` bytes. */
const fieldSize = (field: number, bodyLength: number) => key(field).length + varint(bodyLength).length + bodyLength;

export interface BigOnnxOptions { mb: number; seed?: number }
export interface BigOnnxResult { path: string; bytes: number; columns: number; weightBytes: number }

export async function writeBigOnnx(path: string, { mb, seed = 1 }: BigOnnxOptions): Promise<BigOnnxResult> {
  const columns = Math.max(1, Math.round((mb * 1024 * 1024) / (INPUT_DIM * 4)));
  const weightBytes = INPUT_DIM * columns * 4;
  if (weightBytes >= 2 ** 31) console.warn(`make-big-onnx: ${weightBytes} bytes of weights exceeds protobuf's 2 GB limit; onnxruntime will not load it`);

  const { ModelProto, GraphProto, TensorProto } = onnxTypes;
  const tensorType = (dims: (number | string)[]) => ({ tensor_type: { elem_type: OnnxDataType.FLOAT, shape: { dim: dims.map((d) => (typeof d === 'number' ? { dim_value: d } : { dim_param: d })) } } });
  const header = ModelProto.encode(ModelProto.fromObject({
    ir_version: 8, producer_name: 'pyml-bench-make-big-onnx', opset_import: [{ domain: '', version: 13 }],
  })).finish();
  const graphHead = GraphProto.encode(GraphProto.fromObject({
    name: 'big_matmul',
    node: [{ op_type: 'MatMul', name: 'matmul', input: ['input', 'W'], output: ['output'] }],
    input: [{ name: 'input', type: tensorType(['N', INPUT_DIM]) }],
    output: [{ name: 'output', type: tensorType(['N', columns]) }],
  })).finish();
  const tensorHead = TensorProto.encode(TensorProto.fromObject({ dims: [INPUT_DIM, columns], data_type: OnnxDataType.FLOAT, name: 'W' })).finish();

  // Nested sizes, innermost first: TensorProto(W) ⊂ GraphProto.initializer (5) ⊂ ModelProto.graph (7).
  const tensorLength = tensorHead.length + fieldSize(9, weightBytes);
  const graphLength = graphHead.length + fieldSize(5, tensorLength);

  const file = await open(path, 'w');
  try {
    let bytes = 0;
    const write = async (b: Uint8Array) => { await file.write(b); bytes += b.length; };
    await write(header);
    await write(Buffer.concat([key(7), varint(graphLength)]));
    await write(graphHead);
    await write(Buffer.concat([key(5), varint(tensorLength)]));
    await write(tensorHead);
    await write(Buffer.concat([key(9), varint(weightBytes)]));

    let state = seed >>> 0; // mulberry32
    const scale = 1 / Math.sqrt(INPUT_DIM);
    const chunk = Buffer.alloc(CHUNK_FLOATS * 4);
    for (let left = INPUT_DIM * columns; left > 0;) {
      const n = Math.min(left, CHUNK_FLOATS);
      for (let i = 0; i < n; i++) {
        state = (state + 0x6d2b79f5) >>> 0;
        let t = state;
        t = Math.imul(t ^ (t >>> 15), t | 1);
        t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
        chunk.writeFloatLE(((((t ^ (t >>> 14)) >>> 0) / 4294967296) * 2 - 1) * scale, i * 4);
      }
      await write(chunk.subarray(0, n * 4));
      left -= n;
    }
    return { path, bytes, columns, weightBytes };
  } finally {
    await file.close();
  }
}

function parseArgs(argv: string[]): { mb: number; seed: number; out: string; describe: boolean } {
  let mb = 200, seed = 1, out: string | undefined, describe = false;
  for (let i = 0; i < argv.length; i++) {
    if (argv[i] === '--mb') mb = Number(argv[++i]);
    else if (argv[i] === '--describe') describe = true;
    else if (argv[i] === '--seed') seed = Number(argv[++i]);
    else out = argv[i];
  }
  if (!out || !(mb > 0) || !Number.isInteger(seed)) {
    console.error('usage: tsx bench/make-big-onnx.ts --mb 200 [--seed 1] [--describe] OUT.onnx');
    process.exit(2);
  }
  return { mb, seed, out, describe };
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  const { mb, seed, out, describe } = parseArgs(process.argv.slice(2));
  const started = performance.now();
  const r = await writeBigOnnx(out, { mb, seed });
  const rss = process.memoryUsage().rss / 2 ** 20;
  console.log(`wrote ${r.path}: ${r.bytes} bytes (W [${INPUT_DIM},${r.columns}]) in ${((performance.now() - started) / 1000).toFixed(1)} s, rss ${rss.toFixed(0)} MB`);
  if (describe) {
    const { readOnnxModel } = await import('../plugins/onnx/src/onnx-reader.ts');
    const before = process.memoryUsage();
    const t = performance.now();
    const info = await readOnnxModel(out);
    const ms = performance.now() - t;
    const after = process.memoryUsage();
    const kb = (n: number) => `${(n / 1024).toFixed(0)} KB`;
    console.log(`described in ${ms.toFixed(1)} ms: ${info.initializerCount} initializer(s), ${info.initializerBytes} weight bytes skipped; ` +
      `heapUsed +${kb(after.heapUsed - before.heapUsed)}, arrayBuffers +${kb(after.arrayBuffers - before.arrayBuffers)}, rss +${kb(after.rss - before.rss)}`);
  }
}
