// The floor of two hops: the least a front process forwarding to a model process can cost in Node. A node:http
// (HTTP/1.1, keep-alive) front passes each body as it came, length-prefixed with a call id, over a Unix socket to a
// second process holding onnxruntime-node (the node-floor's JSON.parse, session.run, JSON.stringify), which answers
// with the JSON text the front writes back. No limits, deadlines, errors or metrics: what pyml serve pays beyond
// this is its own; this much any two-process design pays.
//   node bench/peers/two-hop-floor.mjs MODEL.onnx     → prints {"port": N, "pid": P}, serves POST /v2/models/NAME/infer
import { fork } from 'node:child_process';
import { rmSync } from 'node:fs';
import { createServer } from 'node:http';
import net from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';

/** Cuts a stream into frames (u32 length of the rest, u32 id, body) and hands each whole one to `onFrame`. */
function frames(socket, onFrame) {
  let pending = Buffer.alloc(0);
  socket.on('data', (chunk) => {
    pending = pending.length ? Buffer.concat([pending, chunk]) : chunk;
    while (pending.length >= 8 && pending.length >= 4 + pending.readUInt32BE(0)) {
      const end = 4 + pending.readUInt32BE(0);
      onFrame(pending.readUInt32BE(4), pending.subarray(8, end));
      pending = pending.subarray(end);
    }
  });
}

function send(socket, id, body) {
  const out = Buffer.allocUnsafe(8 + body.length);
  out.writeUInt32BE(4 + body.length, 0);
  out.writeUInt32BE(id, 4);
  body.copy(out, 8);
  socket.write(out);
}

if (process.argv[2] === '--model') {
  // The model process.
  const ort = await import('onnxruntime-node');
  const session = await ort.InferenceSession.create(process.argv[3], { intraOpNumThreads: Number(process.env.PEER_ORT_THREADS ?? 1), interOpNumThreads: 1 });
  const NAMES = { float32: 'FP32', float64: 'FP64', int32: 'INT32', int64: 'INT64' };
  const server = net.createServer((socket) => frames(socket, async (id, body) => {
    const request = JSON.parse(body.toString());
    const feeds = {};
    for (const t of request.inputs) feeds[t.name] = new ort.Tensor('float32', Float32Array.from(t.data.flat(Infinity)), t.shape);
    const out = await session.run(feeds);
    const outputs = Object.entries(out).map(([name, t]) => ({ name, datatype: NAMES[t.type], shape: t.dims, data: Array.from(t.data, Number) }));
    send(socket, id, Buffer.from(JSON.stringify({ model_name: 'iris', outputs })));
  }));
  server.listen(process.argv[4], () => process.send('ready'));
} else {
  // The front.
  const socketPath = path.join(tmpdir(), `two-hop-floor-${process.pid}.sock`);
  const model = fork(new URL(import.meta.url).pathname, ['--model', process.argv[2], socketPath], { stdio: 'inherit' });
  await new Promise((resolve) => model.once('message', resolve));
  const link = net.connect(socketPath);
  const waiting = new Map();
  let nextId = 1;
  frames(link, (id, body) => {
    const res = waiting.get(id);
    waiting.delete(id);
    res.writeHead(200, { 'content-type': 'application/json', 'content-length': body.length }).end(body);
  });
  const server = createServer((req, res) => {
    const chunks = [];
    req.on('data', (c) => chunks.push(c));
    req.on('end', () => {
      const id = nextId++;
      waiting.set(id, res);
      send(link, id, Buffer.concat(chunks));
    });
  });
  server.listen(0, '127.0.0.1', () => console.log(JSON.stringify({ port: server.address().port, pid: process.pid })));
  process.on('SIGTERM', () => { model.kill('SIGTERM'); rmSync(socketPath, { force: true }); process.exit(0); });
}
