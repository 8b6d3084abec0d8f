import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { cp, mkdir, rm, stat, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { pyml, parseJson, REPO, runProcess } from '../helpers/cli.ts';
import { copyExample, editFile, tempDir } from '../helpers/project.ts';
import { requireTool } from '../helpers/tools.ts';
import { v2Client, callError, type V2Client } from '../runtime/v2-client.ts';
import { startServe as startPymlServe, v2Client as tcpV2Client } from '../serve/fixtures.ts';

/**
 * examples/pytorch-mlp built into an image, unpacked with umoci and run under chroot (nothing of the host is
 * visible but the kernel): predict and gRPC serve answer what the TorchScript module answers when called directly
 * in Python; sidecar faults fail one request; a killed sidecar is restarted.
 */

interface BuildJson { ok: boolean; digest: string; parts: { part: string; name: string; digest: string; size: number; reused: boolean }[]; seconds: number }
interface Reference { probabilities: { shape: number[]; data: number[] }; label: { shape: number[]; data: number[] } }

const example = path.join(REPO, 'examples/pytorch-mlp');
let work: string;
let project: string;
let rootfs: string;
let built: BuildJson;
let server: ChildProcess | undefined;
let serverErr = '';
let client: V2Client | undefined;

/** One Python process (importing torch takes seconds) for all the request files. */
const references = (requestFiles: string[]) => {
  const out = execFileSync('/usr/bin/python3', [path.join(REPO, 'test/pytorch/torch-direct.py'), path.join(example, 'weights/mlp.pt'), ...requestFiles], { encoding: 'utf8' });
  return out.trim().split('\n').map((line) => JSON.parse(line) as Reference);
};

function assertClose(got: number[], want: number[], what: string) {
  assert.is(got.length, want.length, `${what}: length`);
  for (let i = 0; i < want.length; i++) {
    assert.ok(Math.abs(got[i]! - want[i]!) <= 1e-6, `${what}[${i}]: ${got[i]} vs ${want[i]}`);
  }
}

test.before(async () => {
  requireTool('umoci');
  requireTool('chroot', 'coreutils');
  if (!(await stat('/usr/bin/python3.11').catch(() => undefined))) throw new Error('the tests need Debian python3-torch and python3-numpy (npm run setup)');
  work = await tempDir('pyml-pytorch-');
  project = await copyExample('pytorch-mlp');
  const r = await pyml(['build', project, '--out', `${work}/oci`, '--json']);
  assert.is(r.code, 0, r.stderr);
  built = parseJson<BuildJson>(r);
  execFileSync('umoci', ['unpack', '--image', `${work}/oci:1.0.0`, `${work}/bundle`], { stdio: 'pipe' });
  rootfs = `${work}/bundle/rootfs`;
  // What every OCI runtime provides (runtime-spec "default devices"); torch seeds its generator from it.
  await mkdir(`${rootfs}/dev`, { recursive: true });
  execFileSync('mknod', ['-m', '444', `${rootfs}/dev/urandom`, 'c', '1', '9']);
});

test.after(async () => {
  client?.close();
  server?.kill('SIGKILL');
  await rm(work, { recursive: true, force: true });
  await rm(project, { recursive: true, force: true });
});

test('the image has five parts; the python deps layer lists Debian packages with versions', async () => {
  assert.ok(built.ok);
  assert.equal([...new Set(built.parts.map((p) => p.part))], ['base', 'deps', 'weights', 'model', 'entrypoint']);
  assert.equal(built.parts.filter((p) => p.part === 'deps').map((p) => p.name), ['python', 'pyml-python']);
  const r = await pyml(['inspect', 'image', `${work}/oci`, '--json']);
  assert.is(r.code, 0, r.stderr);
  const deps = parseJson<{ deps: { name: string; version: string; plugin?: string }[] }>(r).deps;
  const version = (name: string) => execFileSync('dpkg-query', ['-W', '-f=${Version}', name], { encoding: 'utf8' });
  for (const name of ['python3-torch', 'python3-numpy', 'python3.11', 'libpython3.11-stdlib']) {
    const d = deps.find((x) => x.name === name);
    assert.ok(d, `deps manifest lists ${name}`);
    assert.is(d!.version, version(name));
    assert.is(d!.plugin, 'pytorch');
  }
});

test('chroot predict equals the TorchScript module called in Python (within 1e-6)', async () => {
  await cp(path.join(example, 'sample.json'), `${rootfs}/tmp/sample.json`);
  const r = await runProcess('chroot', [rootfs, '/usr/local/bin/node', '/opt/pyml/runtime/entrypoint.mjs', 'predict', '--input', '/tmp/sample.json'], { cwd: '/' });
  assert.is(r.code, 0, r.stderr);
  const served = JSON.parse(r.stdout) as { outputs: { name: string; datatype: string; shape: number[]; data: number[] }[] };
  const [want] = references([path.join(example, 'sample.json')]);
  assert.ok(want);
  const p = served.outputs.find((o) => o.name === 'probabilities')!;
  assert.is(p.datatype, 'FP32');
  assert.equal(p.shape, want!.probabilities.shape);
  assertClose(p.data, want!.probabilities.data, 'probabilities');
  const label = served.outputs.find((o) => o.name === 'label')!;
  assert.is(label.datatype, 'INT64');
  assert.equal(label.data.map(Number), want!.label.data);
});

test('chroot predict: a Python exception fails the request with its message', async () => {
  await writeFile(`${rootfs}/tmp/nan.json`, JSON.stringify({ inputs: [{ name: 'input', datatype: 'FP32', shape: [1, 8], data: [1, 2, 3, 'NaN', 5, 6, 7, 8] }] }));
  const r = await runProcess('chroot', [rootfs, '/usr/local/bin/node', '/opt/pyml/runtime/entrypoint.mjs', 'predict', '--input', '/tmp/nan.json'], { cwd: '/' });
  assert.is.not(r.code, 0);
  assert.ok(r.stderr.includes('ValueError: input contains NaN'), r.stderr);
});

function startServe(): Promise<{ socket: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn('chroot', [rootfs, '/usr/local/bin/node', '/opt/pyml/runtime/entrypoint.mjs', 'serve', '--socket', '/run/pyml/model.sock'], { cwd: '/', stdio: ['ignore', 'pipe', 'pipe'] });
    server = child;
    let out = '';
    child.stderr!.on('data', (d: Buffer) => { serverErr += d.toString(); });
    child.stdout!.on('data', (d: Buffer) => {
      out += d.toString();
      if (out.includes('\n')) resolve({ socket: `${rootfs}/run/pyml/model.sock` });
    });
    child.on('exit', (code) => reject(new Error(`serve exited with ${code}: ${serverErr}`)));
  });
}

function sidecarPids(): number[] {
  return [...serverErr.matchAll(/"msg":"python sidecar ready"[^\n]*"pid":(\d+)/g)].map((m) => Number(m[1]));
}

const inferRequest = (rows: number[][]) => ({
  model_name: 'pytorch-mlp',
  inputs: [{ name: 'input', datatype: 'FP32', shape: [rows.length, 8], contents: { fp32_contents: rows.flat() } }],
});

const rowsOf = (seed: number, n: number) => Array.from({ length: n }, (_, r) => Array.from({ length: 8 }, (_, c) => Math.fround(Math.sin(seed * 31 + r * 7 + c) * 3)));

async function referencesFor(batches: number[][][]): Promise<Reference[]> {
  const files: string[] = [];
  for (const [i, rows] of batches.entries()) {
    files.push(path.join(work, `req${i}.json`));
    await writeFile(files[i]!, JSON.stringify({ inputs: [{ name: 'input', datatype: 'FP32', shape: [rows.length, 8], data: rows.flat() }] }));
  }
  return references(files);
}

test('chroot serve (gRPC OIP): 32 concurrent requests equal the direct TorchScript outputs', async () => {
  const { socket } = await startServe();
  client = v2Client(socket);
  const batches = Array.from({ length: 32 }, (_, i) => rowsOf(i, 1 + (i % 4)));
  const answers = await Promise.all(batches.map((rows) => client!.call('ModelInfer', inferRequest(rows))));
  const wants = await referencesFor(batches);
  assert.is(wants.length, batches.length);
  for (const i of batches.keys()) {
    const want = wants[i]!;
    const res = answers[i];
    const out = (name: string) => {
      const idx = res.outputs.findIndex((o: { name: string }) => o.name === name);
      return res.raw_output_contents.length ? Buffer.from(res.raw_output_contents[idx]) : undefined;
    };
    const pBuf = out('probabilities');
    const probs = pBuf ? Array.from(new Float32Array(pBuf.buffer.slice(pBuf.byteOffset, pBuf.byteOffset + pBuf.length))) : res.outputs.find((o: { name: string }) => o.name === 'probabilities').contents.fp32_contents;
    assertClose(probs, want!.probabilities.data, `request ${i} probabilities`);
  }
});

test('chroot serve: a Python exception is INTERNAL with the Python message; the next request works', async () => {
  const bad = inferRequest([[1, 2, 3, Number.NaN, 5, 6, 7, 8]]);
  const error = await callError(client!.call('ModelInfer', bad));
  assert.is(error.code, 13, `INTERNAL, got ${error.code}: ${error.details}`);
  assert.ok(error.details.includes('ValueError: input contains NaN'), error.details);
  const ok = await client!.call('ModelInfer', inferRequest(rowsOf(99, 2)));
  assert.is(ok.outputs.length, 2);
  assert.is(sidecarPids().length, 1, 'an exception does not restart the sidecar');
});

test('chroot serve: a killed sidecar is restarted; requests succeed again', async () => {
  const [pid] = sidecarPids();
  assert.ok(pid, serverErr);
  process.kill(pid!, 'SIGKILL');
  // Requests during the restart wait for the new sidecar (or fail alone); within a while one must succeed.
  const deadline = Date.now() + 60_000;
  let answered = false;
  while (!answered && Date.now() < deadline) {
    try {
      await client!.call('ModelInfer', inferRequest(rowsOf(5, 1)));
      answered = true;
    } catch (error) {
      assert.ok(/sidecar/.test((error as { details?: string }).details ?? ''), String(error));
      await new Promise((r) => setTimeout(r, 200));
    }
  }
  assert.ok(answered, `no answer after the restart: ${serverErr.slice(-2000)}`);
  const pids = sidecarPids();
  assert.is(pids.length, 2, serverErr.slice(-2000));
  assert.is.not(pids[1], pid);
  assert.ok(serverErr.includes('python sidecar killed by SIGKILL; restarting it'));
});

test('pyml serve (image run unpacked through its own loader, no chroot) answers as the direct TorchScript call', async () => {
  client?.close();
  client = undefined;
  server?.kill('SIGTERM');
  const served = await startPymlServe([`${work}/oci`]);
  const tcp = tcpV2Client(served.ready.grpc);
  try {
    const batches = [rowsOf(41, 3), rowsOf(42, 1)];
    const wants = await referencesFor(batches);
    for (const [i, rows] of batches.entries()) {
      const res = await tcp.call('ModelInfer', inferRequest(rows), 120_000);
      const idx = res.outputs.findIndex((o: { name: string }) => o.name === 'probabilities');
      const probs = res.raw_output_contents.length
        ? Array.from(new Float32Array(new Uint8Array(res.raw_output_contents[idx]).buffer))
        : res.outputs[idx].contents.fp32_contents;
      assertClose(probs, wants[i]!.probabilities.data, `pyml serve request ${i}`);
    }
    const error = await callError(tcp.call('ModelInfer', inferRequest([[Number.NaN, 0, 0, 0, 0, 0, 0, 0]])));
    assert.ok(error.details.includes('ValueError: input contains NaN'), error.details);
  } finally {
    tcp.close();
    await served.stop();
  }
});

test('rebuild after a model-code change reuses the python layer and changes only the model part', async () => {
  await editFile(path.join(project, 'src/model.py'), (t) => t.replace('"""The served model', '"""(edited) The served model'));
  const r = await pyml(['build', project, '--out', `${work}/oci2`, '--json']);
  assert.is(r.code, 0, r.stderr);
  const again = parseJson<BuildJson>(r);
  const byName = (b: BuildJson, name: string) => b.parts.find((p) => p.name === name)!;
  assert.ok(byName(again, 'python').reused, 'python layer reused');
  assert.is(byName(again, 'python').digest, byName(built, 'python').digest);
  // (the edited model layer may come from the blob cache of an earlier run: compare digests, not `reused`)
  assert.is.not(byName(again, 'model').digest, byName(built, 'model').digest, 'the model layer changed');
  assert.is(byName(again, 'weights').digest, byName(built, 'weights').digest);
  assert.ok(again.seconds < 30, `rebuild took ${again.seconds} s`);
  assert.ok(byName(built, 'python').size > 100 * 1024 * 1024, 'the python layer is the big one');
});

test.run();
