import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { stat } from 'node:fs/promises';
import type { Logger, Signature, Tensors } from '@pyml/contract';
import { createPythonAdapter, PYTHON_PATH_DIR, type PythonSession, type PythonModelSource } from '@pyml/plugin-python';
import { decodeFrame, encodeFrame, FrameReader } from '@pyml/plugin-python/framing';

/**
 * The adapter and its Python sidecar on this machine's Debian Python (the same files the image carries): every
 * dtype through the framing and back, faults that fail one request, a killed sidecar restarted, init errors.
 */

const ECHO = `
import numpy as np
import pyml

class Echo(pyml.TensorModel):
    def init(self, ctx):
        self.weights = ctx.weights_dir
        self.calls = 0

    def predict(self, inputs):
        self.calls += 1
        if "fail" in inputs:
            kind = int(inputs["fail"].reshape(-1)[0])
            if kind == 1:
                raise pyml.InvalidInput("fail asked for by the caller")
            if kind == 2:
                raise KeyError("no such thing")
            if kind == 3:
                import os
                os._exit(7)
            if kind == 4:
                return [1, 2]
        out = {k: v for k, v in inputs.items()}
        out["calls"] = np.array([self.calls], dtype=np.int64)
        out["doubled"] = np.asarray([[2.5, -1.0]], dtype=np.float64) * 2
        return out
`;

const logs: string[] = [];
const logger: Logger = {
  debug() {}, info: (m) => logs.push(m), warn: (m) => logs.push(m), error: (m) => logs.push(m),
};
const signature: Signature = { inputs: [], outputs: [] };
const env = { weightsDir: '/nonexistent-weights', weightsPath: (f: string) => `/nonexistent-weights/${f}`, signature, logger };
let echo: PythonSession;

/** Awaits a promise that must reject, and checks its error. */
async function rejects<E extends Error>(p: Promise<unknown>, check: (e: E) => boolean): Promise<void> {
  let error: E | undefined;
  try {
    await p;
  } catch (e) {
    error = e as E;
  }
  assert.ok(error, 'expected a rejection');
  assert.ok(check(error!), `unexpected error: ${error!.message}`);
}

async function start(source: PythonModelSource): Promise<PythonSession> {
  process.env.PYML_PYTORCH_PYTHONPATH = PYTHON_PATH_DIR;
  const adapter = await createPythonAdapter()(env);
  return adapter.start(source);
}

test.before(async () => {
  if (!(await stat('/usr/bin/python3.11').catch(() => undefined))) throw new Error('the tests need Debian python3-numpy and python3-torch (npm run setup)');
  echo = await start({ files: { 'echo.py': ECHO }, module: 'echo' });
});

test.after(async () => { await echo?.close(); });

test('framing round-trips every dtype in-process (offsets 8-aligned, views not copies)', () => {
  const tensors: Tensors = {
    a: { dtype: 'FP32', shape: [2, 2], data: Float32Array.from([1.5, -2, 3, 4]) },
    b: { dtype: 'INT8', shape: [3], data: Int8Array.from([-1, 0, 1]) },
    c: { dtype: 'BYTES', shape: [2], data: ['héllo', ''] },
    d: { dtype: 'UINT64', shape: [1], data: BigUint64Array.from([2n ** 64n - 1n]) },
  };
  const parts = encodeFrame({ id: 7, op: 'predict' }, tensors);
  const bytes = Buffer.concat(parts);
  let got: ReturnType<typeof decodeFrame> | undefined;
  const reader = new FrameReader((body) => { got = decodeFrame(body); });
  for (let i = 0; i < bytes.length; i += 5) reader.push(bytes.subarray(i, i + 5)); // arbitrary chunking
  assert.ok(got);
  assert.is(got!.header.id, 7);
  for (const [name, t] of Object.entries(tensors)) {
    assert.is(got!.tensors[name]!.dtype, t.dtype);
    assert.equal(Array.from(got!.tensors[name]!.data as ArrayLike<unknown>), Array.from(t.data as ArrayLike<unknown>), name);
  }
});

test('every OIP dtype goes through Python and back unchanged', async () => {
  const inputs: Tensors = {
    f32: { dtype: 'FP32', shape: [2, 3], data: Float32Array.from([0.1, -1e30, 3.5, Number.POSITIVE_INFINITY, 0, -0]) },
    f64: { dtype: 'FP64', shape: [2], data: Float64Array.from([Math.PI, -1e-300]) },
    f16: { dtype: 'FP16', shape: [2], data: Uint16Array.from([0x3c00, 0xc000]) },
    i8: { dtype: 'INT8', shape: [3], data: Int8Array.from([-128, 0, 127]) },
    i16: { dtype: 'INT16', shape: [1], data: Int16Array.from([-32768]) },
    i32: { dtype: 'INT32', shape: [1, 1], data: Int32Array.from([-2147483648]) },
    i64: { dtype: 'INT64', shape: [2], data: BigInt64Array.from([-(2n ** 63n), 9007199254740993n]) },
    u8: { dtype: 'UINT8', shape: [1], data: Uint8Array.from([255]) },
    u16: { dtype: 'UINT16', shape: [1], data: Uint16Array.from([65535]) },
    u32: { dtype: 'UINT32', shape: [1], data: Uint32Array.from([4294967295]) },
    u64: { dtype: 'UINT64', shape: [1], data: BigUint64Array.from([2n ** 64n - 1n]) },
    ok: { dtype: 'BOOL', shape: [3], data: Uint8Array.from([1, 0, 1]) },
    s: { dtype: 'BYTES', shape: [2], data: ['naïve', 'b'] },
    empty: { dtype: 'FP32', shape: [0, 4], data: new Float32Array(0) },
  };
  const out = await echo.predict(inputs);
  for (const [name, t] of Object.entries(inputs)) {
    assert.is(out[name]?.dtype, t.dtype, `${name} dtype`);
    assert.equal(out[name]!.shape, t.shape, `${name} shape`);
    assert.equal(Array.from(out[name]!.data as ArrayLike<unknown>), Array.from(t.data as ArrayLike<unknown>), `${name} data`);
  }
  assert.equal(Array.from(out.doubled!.data as Float64Array), [5, -2]);
  assert.is(out.doubled!.dtype, 'FP64');
});

const fail = (kind: number): Tensors => ({ fail: { dtype: 'INT32', shape: [1], data: Int32Array.from([kind]) } });

test('a Python exception fails that request alone, with type and message; the next request works', async () => {
  const before = echo.pid;
  await rejects(echo.predict(fail(2)), (e: Error) => e.message === "KeyError: 'no such thing'");
  await rejects(echo.predict(fail(1)), (e: Error & { kind?: string }) => e.message === 'InvalidInput: fail asked for by the caller' && e.kind === 'invalid');
  await rejects(echo.predict(fail(4)), (e: Error) => /predict must return a dict of named arrays, got list/.test(e.message));
  const ok = await echo.predict({ x: { dtype: 'FP32', shape: [1], data: Float32Array.from([1]) } });
  assert.equal(Array.from(ok.x!.data as Float32Array), [1]);
  assert.is(echo.pid, before, 'no restart for an exception');
});

test('32 pipelined requests each get their own answer', async () => {
  const answers = await Promise.all(Array.from({ length: 32 }, (_, i) =>
    echo.predict({ x: { dtype: 'INT32', shape: [2], data: Int32Array.from([i, -i]) } })));
  answers.forEach((a, i) => assert.equal(Array.from(a.x!.data as Int32Array), [i, -i]));
});

test('a sidecar that dies fails the requests in flight, is restarted with init run again, and serves again', async () => {
  const before = echo.pid!;
  const restarts = echo.restarts;
  const inFlight = Array.from({ length: 4 }, () => echo.predict({ x: { dtype: 'FP32', shape: [1], data: Float32Array.from([1]) } }).then(() => 'ok', (e: Error) => e.message));
  await rejects(echo.predict(fail(3)), (e: Error) => /python sidecar exited with code 7/.test(e.message));
  await Promise.all(inFlight);
  const again = await echo.predict({ x: { dtype: 'FP32', shape: [1], data: Float32Array.from([2]) } });
  assert.equal(Array.from(again.calls!.data as BigInt64Array), [1n], 'a fresh model instance (init ran again)');
  assert.is.not(echo.pid, before);
  assert.is(echo.restarts, restarts + 1);
  // A kill from outside, too.
  const pid = echo.pid!;
  process.kill(pid, 'SIGKILL');
  let answered = false;
  for (let i = 0; i < 100 && !answered; i++) {
    answered = await echo.predict({ x: { dtype: 'FP32', shape: [1], data: Float32Array.from([3]) } }).then(() => true, () => false);
    if (!answered) await new Promise((r) => setTimeout(r, 100));
  }
  assert.ok(answered);
  assert.is.not(echo.pid, pid);
  assert.ok(logs.some((l) => l.includes('killed by SIGKILL; restarting it')), logs.join('\n'));
});

test('init errors name the Python error: missing class, exception in init, syntax error with file and line', async () => {
  await rejects(start({ files: { 'm.py': 'import pyml\nclass A(pyml.TensorModel):\n    pass\n' }, module: 'm', className: 'B' }),
    (e: Error) => /AttributeError: module 'm' has no class 'B'/.test(e.message));
  await rejects(start({ files: { 'm.py': 'import pyml\nclass A(pyml.TensorModel):\n    def init(self, ctx):\n        open(ctx.weights_path("nope.pt"))\n' }, module: 'm' }),
    (e: Error) => /FileNotFoundError: .*nope\.pt/.test(e.message));
  await rejects(start({ files: { 'm.py': 'import pyml\ndef broken(:\n' }, module: 'm' }),
    (e: Error) => /SyntaxError: .*\(m\.py, line 2\)/.test(e.message));
});

test.run();
