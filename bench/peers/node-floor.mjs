// The floor: a one-process node:http (HTTP/1.1, keep-alive) + onnxruntime-node V2 REST server, as a Node user
// would write it for one ONNX model. Plain JavaScript so nothing compiles at start-up (its cold start is Node's).
//   node bench/peers/node-floor.mjs MODEL.onnx    → prints {"port": N}, serves POST /v2/models/NAME/infer
import { createServer } from 'node:http';
import * as ort from 'onnxruntime-node';

const session = await ort.InferenceSession.create(process.argv[2], { intraOpNumThreads: Number(process.env.PEER_ORT_THREADS ?? 1), interOpNumThreads: 1 });
const TYPES = { FP32: [Float32Array, 'float32'], FP64: [Float64Array, 'float64'], INT32: [Int32Array, 'int32'] };
const NAMES = { float32: 'FP32', float64: 'FP64', int32: 'INT32', int64: 'INT64' };

const server = createServer((req, res) => {
  const m = /^\/v2\/models\/([^/]+)\/infer$/.exec(req.url ?? '');
  if (req.method !== 'POST' || !m) return void res.writeHead(404).end();
  const chunks = [];
  req.on('data', (c) => chunks.push(c));
  req.on('end', async () => {
    try {
      const body = JSON.parse(Buffer.concat(chunks).toString());
      const feeds = {};
      for (const t of body.inputs) {
        const [Array_, type] = TYPES[t.datatype] ?? [];
        if (!Array_) throw new Error(`unsupported datatype ${t.datatype}`);
        feeds[t.name] = new ort.Tensor(type, Array_.from(t.data.flat(Infinity)), t.shape);
      }
      const out = await session.run(feeds);
      const outputs = Object.entries(out).map(([name, t]) => ({ name, datatype: NAMES[t.type], shape: t.dims, data: Array.from(t.data, Number) }));
      const json = JSON.stringify({ model_name: m[1], outputs });
      res.writeHead(200, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(json) }).end(json);
    } catch (error) {
      res.writeHead(400, { 'content-type': 'application/json' }).end(JSON.stringify({ error: String(error.message) }));
    }
  });
});
server.listen(0, '127.0.0.1', () => console.log(JSON.stringify({ port: server.address().port, pid: process.pid })));
process.on('SIGTERM', () => process.exit(0));
