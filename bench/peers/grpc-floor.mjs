// The gRPC floor in Node: one process, node:http2 + onnxruntime-node, a V2 ModelInfer that reads raw_input_contents
// and answers with raw_output_contents (protobufjs's Reader/Writer, the gRPC framing by hand), as a Node user would
// write it for one ONNX model without grpc-js. No limits, deadlines, errors or health: what node:http2 itself costs
// a gRPC server here, beside the grpcio peer. node:http2 sends a unary answer's trailers one event-loop turn after
// its headers and message (sendTrailers defers them with setImmediate), so every answer is two writes.
//   node bench/peers/grpc-floor.mjs MODEL.onnx    → prints {"port": N, "pid": P}, serves inference.GRPCInferenceService/ModelInfer
import http2 from 'node:http2';
import * as ort from 'onnxruntime-node';
import protobuf from 'protobufjs/minimal.js';

const { Reader, Writer } = protobuf;
const session = await ort.InferenceSession.create(process.argv[2], { intraOpNumThreads: Number(process.env.PEER_ORT_THREADS ?? 1), interOpNumThreads: 1 });
const ARRAYS = { FP32: [Float32Array, 'float32'], FP64: [Float64Array, 'float64'], INT32: [Int32Array, 'int32'], INT64: [BigInt64Array, 'int64'] };
const NAMES = { float32: 'FP32', float64: 'FP64', int32: 'INT32', int64: 'INT64' };

/** ModelInferRequest: model_name (1), id (3), inputs (5: name 1, datatype 2, shape 3), raw_input_contents (7). */
function decodeRequest(bytes) {
  const r = Reader.create(bytes);
  const request = { modelName: '', id: '', inputs: [], raw: [] };
  while (r.pos < r.len) {
    const tag = r.uint32();
    switch (tag >>> 3) {
      case 1: request.modelName = r.string(); break;
      case 3: request.id = r.string(); break;
      case 5: {
        const end = r.uint32() + r.pos;
        const input = { name: '', datatype: '', shape: [] };
        while (r.pos < end) {
          const t = r.uint32();
          if (t >>> 3 === 1) input.name = r.string();
          else if (t >>> 3 === 2) input.datatype = r.string();
          else if (t >>> 3 === 3 && (t & 7) === 2) { const e = r.uint32() + r.pos; while (r.pos < e) input.shape.push(Number(r.int64())); }
          else if (t >>> 3 === 3) input.shape.push(Number(r.int64()));
          else r.skipType(t & 7);
        }
        request.inputs.push(input);
        break;
      }
      case 7: request.raw.push(r.bytes()); break;
      default: r.skipType(tag & 7);
    }
  }
  return request;
}

/** ModelInferResponse: model_name (1), id (3), outputs (5: name, datatype, packed shape), raw_output_contents (6). */
function encodeResponse(request, results) {
  const w = Writer.create();
  w.uint32(10).string(request.modelName);
  if (request.id) w.uint32(26).string(request.id);
  for (const [name, t] of results) {
    w.uint32(42).fork().uint32(10).string(name).uint32(18).string(NAMES[t.type]).uint32(26).fork();
    for (const d of t.dims) w.int64(d);
    w.ldelim().ldelim();
  }
  for (const [, t] of results) w.uint32(50).bytes(new Uint8Array(t.data.buffer, t.data.byteOffset, t.data.byteLength));
  return w.finish();
}

const server = http2.createServer();
server.on('stream', (stream) => {
  const chunks = [];
  stream.on('data', (c) => chunks.push(c));
  stream.on('end', async () => {
    const body = Buffer.concat(chunks);
    const request = decodeRequest(body.subarray(5, 5 + body.readUInt32BE(1)));
    const feeds = {};
    request.inputs.forEach((input, i) => {
      const [Array_, type] = ARRAYS[input.datatype];
      const raw = request.raw[i];
      feeds[input.name] = new ort.Tensor(type, new Array_(raw.buffer.slice(raw.byteOffset, raw.byteOffset + raw.byteLength)), input.shape);
    });
    const message = encodeResponse(request, Object.entries(await session.run(feeds)));
    const framed = Buffer.allocUnsafe(5 + message.length);
    framed[0] = 0;
    framed.writeUInt32BE(message.length, 1);
    framed.set(message, 5);
    stream.respond({ ':status': 200, 'content-type': 'application/grpc' }, { waitForTrailers: true });
    stream.once('wantTrailers', () => stream.sendTrailers({ 'grpc-status': '0' }));
    stream.end(framed);
  });
});
server.listen(0, '127.0.0.1', () => console.log(JSON.stringify({ port: server.address().port, pid: process.pid })));
process.on('SIGTERM', () => process.exit(0));
