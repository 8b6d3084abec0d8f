import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { closeSync, copyFileSync, mkdirSync, openSync, readFileSync, readSync, writeFileSync, statSync } from 'node:fs';
import { execFileSync } from 'node:child_process';
import { dirname, join } from 'node:path';
import { onnxRuntimeLayer, IMAGE_NODE_MODULES } from '../../plugins/onnx/src/runtime-layer.ts';
import { IRIS_MODEL, tempDir } from './helpers.ts';

const amd64 = onnxRuntimeLayer({ os: 'linux', architecture: 'amd64' });
const arm64 = onnxRuntimeLayer({ os: 'linux', architecture: 'arm64' });
const paths = (l: typeof amd64) => l.files.filter((f) => !f.directory).map((f) => f.path);

test('amd64 layer holds linux/x64 binaries and runtime JS only', () => {
  const files = paths(amd64);
  for (const f of files) {
    assert.ok(f.startsWith(`${IMAGE_NODE_MODULES}/onnxruntime-node/`) || f.startsWith(`${IMAGE_NODE_MODULES}/onnxruntime-common/`), f);
    assert.not.match(f, /darwin|win32|\/arm64\/|\.dylib$|\.dll$/, `foreign platform file ${f}`);
    assert.not.match(f, /\.d\.ts$|\.map$|README|\/lib\/|\/script\//, `build-time file ${f}`);
    assert.not.match(f, /adm-zip|global-agent/, `install-only dependency ${f}`);
  }
  const bin = `${IMAGE_NODE_MODULES}/onnxruntime-node/bin/napi-v6/linux/x64`;
  assert.ok(files.includes(`${bin}/onnxruntime_binding.node`));
  assert.ok(files.includes(`${bin}/libonnxruntime.so.1`));
  assert.ok(files.includes(`${IMAGE_NODE_MODULES}/onnxruntime-node/dist/index.js`));
  assert.ok(files.includes(`${IMAGE_NODE_MODULES}/onnxruntime-common/dist/cjs/index.js`));
  assert.ok(files.includes(`${IMAGE_NODE_MODULES}/onnxruntime-common/dist/esm/package.json`));
  // native files executable, the rest not; sorted; every parent directory present
  for (const f of amd64.files) if (!f.directory) assert.is(f.mode, /\.node$|\.so(\.\d+)*$/.test(f.path) ? 0o755 : 0o644, f.path);
  const all = amd64.files.map((f) => f.path);
  assert.equal(all, [...all].sort());
  for (const f of files) assert.ok(all.includes(dirname(f)), `parent of ${f}`);
  const total = amd64.files.reduce((n, f) => n + (f.source ? statSync(f.source).size : 0), 0);
  assert.ok(total < 80 * 2 ** 20, `layer is ${total} bytes; other platforms' binaries must not be in it`);
});

test('arm64 layer holds linux/arm64 binaries, not x64', () => {
  const files = paths(arm64);
  assert.ok(files.includes(`${IMAGE_NODE_MODULES}/onnxruntime-node/bin/napi-v6/linux/arm64/onnxruntime_binding.node`));
  assert.not.ok(files.some((f) => f.includes('/x64/') || f.includes('darwin') || f.includes('win32')));
  assert.match(arm64.cacheKey!, /^onnxruntime-node@1\.\d+\.\d+\+onnxruntime-common@1\.\d+\.\d+\/linux\/arm64/);
  assert.match(amd64.cacheKey!, /\/linux\/amd64/);
});

/** ELF e_machine of a native file: 0x3e x86-64, 0xb7 AArch64. */
function elfMachine(file: string): number {
  const head = Buffer.alloc(20);
  const fd = openSync(file, 'r');
  try { readSync(fd, head, 0, 20, 0); } finally { closeSync(fd); }
  assert.equal([...head.subarray(0, 4)], [0x7f, 0x45, 0x4c, 0x46], `${file} is an ELF file`);
  return head.readUInt16LE(18);
}

test('native files are ELF binaries of the target architecture', () => {
  const native = (l: typeof amd64) => l.files.filter((f) => f.source && /\.node$|\.so(\.\d+)*$/.test(f.path));
  assert.is(native(amd64).length, 2);
  assert.is(native(arm64).length, 2);
  for (const f of native(amd64)) assert.is(elfMachine(f.source!), 0x3e, f.path);
  for (const f of native(arm64)) assert.is(elfMachine(f.source!), 0xb7, f.path);
});

test('deps-manifest entries carry version, licence and the lockfile integrity', () => {
  const lock = JSON.parse(readFileSync(new URL('../../package-lock.json', import.meta.url), 'utf8'));
  assert.is(amd64.name, 'onnxruntime-node');
  assert.equal(amd64.entries.map((e) => e.name), ['onnxruntime-node', 'onnxruntime-common']);
  for (const e of amd64.entries) {
    const locked = lock.packages[`node_modules/${e.name}`];
    assert.is(e.version, locked.version);
    assert.is(e.integrity, locked.integrity);
    assert.is(e.license, 'MIT');
    assert.is(e.plugin, undefined); // filled in by the build with the contributing plugin's name
  }
});

test('the layer, copied into a bare node_modules, loads and runs a model in a child process', () => {
  const dir = tempDir('pyml-onnx-layer-');
  for (const f of amd64.files) {
    const target = join(dir, f.path.slice('/opt/pyml/'.length));
    if (f.directory) mkdirSync(target, { recursive: true });
    else { mkdirSync(dirname(target), { recursive: true }); copyFileSync(f.source!, target); }
  }
  copyFileSync(IRIS_MODEL, join(dir, 'model.onnx'));
  writeFileSync(join(dir, 'run.mjs'), `
    import * as ort from 'onnxruntime-node';
    const session = await ort.InferenceSession.create(new URL('./model.onnx', import.meta.url).pathname);
    const out = await session.run({ input: new ort.Tensor('float32', new Float32Array([5.1, 3.5, 1.4, 0.2, 6.7, 3.0, 5.2, 2.3]), [2, 4]) });
    console.log(JSON.stringify({ resolved: import.meta.resolve('onnxruntime-node'), label: Array.from(out.label.data, Number) }));
  `);
  const env = { ...process.env };
  delete env.NODE_PATH;
  delete env.NODE_OPTIONS;
  const stdout = execFileSync(process.execPath, [join(dir, 'run.mjs')], { cwd: dir, env, encoding: 'utf8' });
  const result = JSON.parse(stdout.trim().split('\n').pop()!);
  assert.ok(result.resolved.startsWith(`file://${dir}/node_modules/onnxruntime-node/`), result.resolved);
  assert.equal(result.label, [0, 2]);
});

test.run();
