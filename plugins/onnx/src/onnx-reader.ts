import { open } from 'node:fs/promises';
import type { Type } from 'protobufjs';
import { FileWireReader, SliceWireReader, WireFormatError, WireType, type FieldKey } from './wire-reader.ts';
import { onnxTypes } from './onnx-schema.ts';
import { OnnxFormatError } from './onnx-format-error.ts';

export { OnnxFormatError };

/** The type of a graph input or output, as ONNX declares it. */
export type OnnxTypeInfo =
  | { kind: 'tensor'; elemType: number; /** undefined when the rank is unknown; strings are dim_params, -1 unnamed unknowns */ shape?: (number | string)[] }
  | { kind: 'sparse_tensor'; elemType: number; shape?: (number | string)[] }
  | { kind: 'sequence'; elem: OnnxTypeInfo }
  | { kind: 'map'; keyType: number; value: OnnxTypeInfo }
  | { kind: 'optional'; elem: OnnxTypeInfo }
  | { kind: 'unknown' };

export interface OnnxValueInfo {
  name: string;
  type: OnnxTypeInfo;
}

export interface OnnxOpset {
  /** '' (or 'ai.onnx') is the default operator set; 'ai.onnx.ml' the classic ML one. */
  domain: string;
  version: number;
}

/** What the build needs to know about an ONNX model, read without loading its weights. */
export interface OnnxModelInfo {
  path: string;
  irVersion: number;
  opsets: OnnxOpset[];
  producerName: string;
  producerVersion: string;
  domain: string;
  modelVersion: number;
  metadata: Record<string, string>;
  graphName: string;
  /** Graph inputs that are fed at run time (inputs that are also initializers are left out). */
  inputs: OnnxValueInfo[];
  outputs: OnnxValueInfo[];
  /** Graph inputs that have an initializer, i.e. overridable constants. */
  initializerInputs: string[];
  nodeCount: number;
  /** Node count per operator, keyed `op_type` for the default domain and `domain:op_type` otherwise. */
  operators: Record<string, number>;
  initializerCount: number;
  /** Bytes of initializer data stored in the file (raw_data and typed fields). */
  initializerBytes: number;
  /** Files named by initializers stored as external data (they must travel with the model). */
  externalData: string[];
}

// Sub-messages decoded whole (value infos, opsets, metadata) are small; a bigger one means a broken file.
const MAX_SMALL_MESSAGE = 16 * 1024 * 1024;

const WIRE_NAMES = ['varint', 'i64', 'length-delimited', 'group start', 'group end', 'i32'];

function expectWire(key: FieldKey, wireType: number, what: string): void {
  if (key.wireType !== wireType) {
    throw new WireFormatError(`field ${key.field} (${what}) has wire type ${WIRE_NAMES[key.wireType]}, expected ${WIRE_NAMES[wireType]}`, key.offset);
  }
}

interface PendingGraph {
  name: string;
  inputs: OnnxValueInfo[];
  outputs: OnnxValueInfo[];
  initializerNames: Set<string>;
  nodeCount: number;
  operators: Record<string, number>;
  initializerCount: number;
  initializerBytes: number;
  externalData: Set<string>;
}

/**
 * Reads an ONNX model's header and graph interface by streaming the file: weights are skipped, never loaded.
 * `displayPath` is how errors name the file (e.g. relative to the project); defaults to `path`.
 */
export async function readOnnxModel(path: string, displayPath = path): Promise<OnnxModelInfo> {
  let reader: FileWireReader;
  try {
    reader = await FileWireReader.open(path);
  } catch (error) {
    throw new Error(`${displayPath}: cannot open: ${(error as Error).message}`, { cause: error });
  }
  try {
    if (reader.size === 0) throw new OnnxFormatError(displayPath, 'file is empty');
    return await readModel(reader, path, displayPath);
  } catch (error) {
    if (error instanceof WireFormatError) throw new OnnxFormatError(displayPath, error.message + await sniffHint(path), error.offset);
    if (error instanceof OnnxFormatError && error.offset === undefined && error.reason.startsWith('has no')) {
      throw new OnnxFormatError(displayPath, error.reason + await sniffHint(path));
    }
    throw error;
  } finally {
    await reader.close();
  }
}

/** A hint for what a non-ONNX file is instead, from its first bytes (the usual mix-ups). */
async function sniffHint(path: string): Promise<string> {
  const handle = await open(path, 'r');
  try {
    const head = Buffer.alloc(64);
    const { bytesRead } = await handle.read(head, 0, 64, 0);
    const b = head.subarray(0, bytesRead);
    if (b.subarray(0, 4).equals(Buffer.from('PK\x03\x04', 'latin1'))) return ' (it is a zip archive; a PyTorch .pt/.pth checkpoint is one: export it with torch.onnx.export)';
    if (b.subarray(0, 4).equals(Buffer.from('\x89HDF', 'latin1'))) return ' (it is an HDF5 file, e.g. a Keras .h5 model)';
    if (b[0] === 0x80 && b[1] >= 2 && b[1] <= 5) return ' (it looks like a Python pickle)';
    if (b.length > 0 && b.every((c) => c === 9 || c === 10 || c === 13 || (c >= 32 && c < 127) || c >= 0xc2)) return ' (it looks like a text file)';
    return '';
  } finally {
    await handle.close();
  }
}

async function readModel(r: FileWireReader, path: string, displayPath: string): Promise<OnnxModelInfo> {
  let irVersion: number | undefined;
  let producerName = '', producerVersion = '', domain = '';
  let modelVersion = 0;
  const opsets: OnnxOpset[] = [];
  const metadata: Record<string, string> = {};
  let graph: PendingGraph | undefined;

  const end = r.size;
  while (r.position < end) {
    const key = await r.key();
    switch (key.field) {
      case 1: expectWire(key, WireType.VARINT, 'ir_version'); irVersion = await r.varint(); break;
      case 2: expectWire(key, WireType.LEN, 'producer_name'); producerName = await readString(r, end); break;
      case 3: expectWire(key, WireType.LEN, 'producer_version'); producerVersion = await readString(r, end); break;
      case 4: expectWire(key, WireType.LEN, 'domain'); domain = await readString(r, end); break;
      case 5: expectWire(key, WireType.VARINT, 'model_version'); modelVersion = await r.varint(); break;
      case 7: {
        expectWire(key, WireType.LEN, 'graph');
        const length = await r.length(end);
        // A repeated message field merges in protobuf; ONNX writers emit one graph, so a second one extends it.
        graph = await readGraph(r, r.position + length, graph);
        break;
      }
      case 8: {
        expectWire(key, WireType.LEN, 'opset_import');
        const o = await decodeSmall(r, end, onnxTypes.OperatorSetIdProto, 'opset_import');
        opsets.push({ domain: String(o.domain ?? ''), version: Number(o.version ?? 0) });
        break;
      }
      case 14: {
        expectWire(key, WireType.LEN, 'metadata_props');
        const e = await decodeSmall(r, end, onnxTypes.StringStringEntryProto, 'metadata_props');
        metadata[String(e.key ?? '')] = String(e.value ?? '');
        break;
      }
      default: await r.skipValue(key, end);
    }
  }
  if (irVersion === undefined) throw new OnnxFormatError(displayPath, 'has no ir_version (ModelProto field 1)');
  if (!graph) throw new OnnxFormatError(displayPath, 'has no graph (ModelProto field 7)');
  if (graph.outputs.length === 0) throw new OnnxFormatError(displayPath, `graph "${graph.name}" has no outputs`);

  const initializerInputs = graph.inputs.filter((i) => graph.initializerNames.has(i.name)).map((i) => i.name);
  return {
    path, irVersion, opsets, producerName, producerVersion, domain, modelVersion, metadata,
    graphName: graph.name,
    inputs: graph.inputs.filter((i) => !graph.initializerNames.has(i.name)),
    outputs: graph.outputs,
    initializerInputs,
    nodeCount: graph.nodeCount,
    operators: graph.operators,
    initializerCount: graph.initializerCount,
    initializerBytes: graph.initializerBytes,
    externalData: [...graph.externalData].sort(),
  };
}

async function readGraph(r: FileWireReader, end: number, into?: PendingGraph): Promise<PendingGraph> {
  const g: PendingGraph = into ?? {
    name: '', inputs: [], outputs: [], initializerNames: new Set(), nodeCount: 0, operators: {},
    initializerCount: 0, initializerBytes: 0, externalData: new Set(),
  };
  while (r.position < end) {
    const key = await r.key();
    switch (key.field) {
      case 1: { // node: only its operator is wanted; attributes (which may hold Constant tensors) are skipped
        expectWire(key, WireType.LEN, 'graph.node');
        const length = await r.length(end);
        const op = length <= INLINE_MESSAGE
          ? nodeOperatorOf(await r.view(length), r.position - length)
          : await readNodeOperator(r, r.position + length);
        g.nodeCount++;
        g.operators[op] = (g.operators[op] ?? 0) + 1;
        break;
      }
      case 2: expectWire(key, WireType.LEN, 'graph.name'); g.name = await readString(r, end); break;
      case 5: { // initializer: name and size only, the data is skipped
        expectWire(key, WireType.LEN, 'graph.initializer');
        const length = await r.length(end);
        if (length <= INLINE_MESSAGE) tensorHeaderOf(await r.view(length), r.position - length, g);
        else await readTensorHeader(r, r.position + length, g);
        break;
      }
      case 15: { // sparse_initializer: SparseTensorProto.values (field 1) carries the name
        expectWire(key, WireType.LEN, 'graph.sparse_initializer');
        const length = await r.length(end);
        const sparseEnd = r.position + length;
        while (r.position < sparseEnd) {
          const k = await r.key();
          if (k.field === 1 && k.wireType === WireType.LEN) {
            const n = await r.length(sparseEnd);
            await readTensorHeader(r, r.position + n, g);
          } else await r.skipValue(k, sparseEnd);
        }
        break;
      }
      case 11: case 12: {
        const what = key.field === 11 ? 'graph.input' : 'graph.output';
        expectWire(key, WireType.LEN, what);
        const v = await decodeSmall(r, end, onnxTypes.ValueInfoProto, what);
        const info: OnnxValueInfo = { name: String(v.name ?? ''), type: toTypeInfo(v.type) };
        (key.field === 11 ? g.inputs : g.outputs).push(info);
        break;
      }
      default: await r.skipValue(key, end);
    }
  }
  return g;
}

/**
 * Nodes and initializers up to this size are parsed synchronously from one buffered view (deep graphs have
 * hundreds of thousands); bigger ones (weights, Constant tensors) are walked field by field and their data skipped.
 */
const INLINE_MESSAGE = 16 * 1024;

function nodeOperatorOf(bytes: Uint8Array, offset: number): string {
  const reader = new SliceWireReader(bytes, offset);
  let opType = '', domain = '';
  while (!reader.done) {
    const key = reader.key();
    if (key.field === 4 && key.wireType === WireType.LEN) opType = reader.string();
    else if (key.field === 7 && key.wireType === WireType.LEN) domain = reader.string();
    else reader.skipValue(key);
  }
  return domain && domain !== 'ai.onnx' ? `${domain}:${opType}` : opType;
}

async function readNodeOperator(r: FileWireReader, end: number): Promise<string> {
  let opType = '', domain = '';
  while (r.position < end) {
    const key = await r.key();
    if (key.field === 4 && key.wireType === WireType.LEN) opType = await readString(r, end);
    else if (key.field === 7 && key.wireType === WireType.LEN) domain = await readString(r, end);
    else await r.skipValue(key, end);
  }
  return domain && domain !== 'ai.onnx' ? `${domain}:${opType}` : opType;
}

/** Reads a TensorProto's name and counts its data bytes, skipping the data itself. */
async function readTensorHeader(r: FileWireReader, end: number, g: PendingGraph): Promise<void> {
  let name = '';
  while (r.position < end) {
    const key = await r.key();
    switch (key.field) {
      case 8: expectWire(key, WireType.LEN, 'tensor.name'); name = await readString(r, end); break;
      case 13: { // external_data: the `location` entry names the file holding the bytes
        expectWire(key, WireType.LEN, 'tensor.external_data');
        const e = await decodeSmall(r, end, onnxTypes.StringStringEntryProto, 'tensor.external_data');
        if (e.key === 'location') g.externalData.add(String(e.value));
        break;
      }
      case 4: case 5: case 6: case 7: case 9: case 10: case 11: { // DATA_FIELDS
        if (key.wireType === WireType.LEN) {
          const n = await r.length(end);
          g.initializerBytes += n;
          r.skip(n, end);
        } else {
          const before = r.position;
          await r.skipValue(key, end);
          g.initializerBytes += r.position - before;
        }
        break;
      }
      default: await r.skipValue(key, end);
    }
  }
  g.initializerNames.add(name);
  g.initializerCount++;
}

/** TensorProto fields holding element data: float/int32/string/int64/raw/double/uint64_data. */
const DATA_FIELDS = new Set([4, 5, 6, 7, 9, 10, 11]);

/** readTensorHeader for a small TensorProto already in memory. */
function tensorHeaderOf(bytes: Uint8Array, offset: number, g: PendingGraph): void {
  const r = new SliceWireReader(bytes, offset);
  let name = '';
  while (!r.done) {
    const key = r.key();
    if (key.field === 8) { expectWire(key, WireType.LEN, 'tensor.name'); name = r.string(); }
    else if (key.field === 13) {
      expectWire(key, WireType.LEN, 'tensor.external_data');
      const e = decodeSlice(r.lengthDelimited(), onnxTypes.StringStringEntryProto, 'tensor.external_data', key.offset);
      if (e.key === 'location') g.externalData.add(String(e.value));
    } else if (DATA_FIELDS.has(key.field) && key.wireType === WireType.LEN) g.initializerBytes += r.lengthDelimited().length;
    else if (DATA_FIELDS.has(key.field)) { const before = r.pos; r.skipValue(key); g.initializerBytes += r.pos - before; }
    else r.skipValue(key);
  }
  g.initializerNames.add(name);
  g.initializerCount++;
}

async function readString(r: FileWireReader, end: number): Promise<string> {
  const n = await r.length(end);
  if (n > MAX_SMALL_MESSAGE) { r.skip(n, end); return ''; } // an absurd doc string is not worth reading
  return Buffer.from(await r.bytes(n)).toString('utf8');
}

function decodeSlice(bytes: Uint8Array, type: Type, what: string, offset: number): Record<string, any> {
  try {
    return type.toObject(type.decode(bytes), { longs: Number, enums: Number, oneofs: true });
  } catch (error) {
    throw new WireFormatError(`cannot decode ${what}: ${(error as Error).message}`, offset);
  }
}

async function decodeSmall(r: FileWireReader, end: number, type: Type, what: string): Promise<Record<string, any>> {
  const offset = r.position;
  const n = await r.length(end);
  if (n > MAX_SMALL_MESSAGE) throw new WireFormatError(`${what} is ${n} bytes, too large to be one`, offset);
  return decodeSlice(await r.bytes(n), type, what, offset);
}

function toShape(shape: Record<string, any> | undefined): (number | string)[] | undefined {
  if (!shape) return undefined;
  return (shape.dim ?? []).map((d: Record<string, any>) =>
    d.value === 'dim_value' ? Number(d.dim_value) : d.value === 'dim_param' && d.dim_param ? String(d.dim_param) : -1);
}

function toTypeInfo(t: Record<string, any> | undefined): OnnxTypeInfo {
  if (!t) return { kind: 'unknown' };
  switch (t.value) {
    case 'tensor_type': return { kind: 'tensor', elemType: Number(t.tensor_type.elem_type ?? 0), shape: toShape(t.tensor_type.shape) };
    case 'sparse_tensor_type': return { kind: 'sparse_tensor', elemType: Number(t.sparse_tensor_type.elem_type ?? 0), shape: toShape(t.sparse_tensor_type.shape) };
    case 'sequence_type': return { kind: 'sequence', elem: toTypeInfo(t.sequence_type.elem_type) };
    case 'map_type': return { kind: 'map', keyType: Number(t.map_type.key_type ?? 0), value: toTypeInfo(t.map_type.value_type) };
    case 'optional_type': return { kind: 'optional', elem: toTypeInfo(t.optional_type.elem_type) };
    default: return { kind: 'unknown' };
  }
}
