import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { mkdir, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { REPO, parseJson, pyml } from '../helpers/cli.ts';
import { tempDir } from '../helpers/project.ts';
import { buildImages, http, startServe } from './fixtures.ts';

/**
 * `pyml cache du` and `pyml cache prune` on a cache of its own, against images that real commands unpacked and a
 * real `pyml serve` holds.
 */

let built: Awaited<ReturnType<typeof buildImages>>;
let cache: string;
let env: Record<string, string>;
const IRIS_SAMPLE = join(REPO, 'examples/onnx-iris/sample.json');
let echoSample: string;

interface Usage { unpacked: { images: number; bytes: number }; pulled: { images: number; bytes: number }; blobs: { bytes: number } }
interface Pruned {
  ok: boolean; dryRun: boolean; freedBytes: number; sharedFilesRemoved: number;
  removed: { kind: string; name: string }[]; kept: { kind: string; name: string; reason: string }[];
}

async function usage(): Promise<Usage> {
  const r = await pyml(['cache', 'du', '--json'], { env });
  assert.is(r.code, 0, r.stderr);
  return parseJson<Usage>(r);
}

async function prune(args: string[] = []): Promise<Pruned> {
  const r = await pyml(['cache', 'prune', ...args, '--json'], { env });
  assert.is(r.code, 0, r.stderr);
  return parseJson<Pruned>(r);
}

async function predict(image: string, input: string): Promise<void> {
  const r = await pyml(['predict', image, '--input', input, '--json'], { env });
  assert.is(r.code, 0, r.stderr);
}

test.before(async () => {
  built = await buildImages(['iris', 'echo']);
  cache = await tempDir('pyml-cache-test-');
  env = { PYML_CACHE_DIR: cache };
  echoSample = join(built.dir, 'echo.json');
  await writeFile(echoSample, JSON.stringify({ inputs: [{ name: 'x', datatype: 'FP32', shape: [1, 2], data: [1, 0] }] }));
});

test.after(async () => {
  await built?.cleanup();
  if (cache) await rm(cache, { recursive: true, force: true });
});

test('a second image on the same base adds only its own files to the unpacked cache', async () => {
  await predict(built.images.iris, IRIS_SAMPLE);
  const one = await usage();
  assert.is(one.unpacked.images, 1);
  assert.ok(one.unpacked.bytes > 50_000_000, `an unpacked image holds Node and onnxruntime: ${one.unpacked.bytes} bytes`);
  await predict(built.images.echo, echoSample);
  const two = await usage();
  assert.is(two.unpacked.images, 2);
  // Unshared, the second tree would add its whole Node runtime again (tens of MB).
  assert.ok(two.unpacked.bytes - one.unpacked.bytes < 10_000_000, `the second image added ${two.unpacked.bytes - one.unpacked.bytes} bytes`);
});

test('prune keeps the image a running pyml serve holds, removes the other, and serve still starts its model', async () => {
  const served = await startServe([built.images.iris, '--start', 'on-demand'], env);
  try {
    const result = await prune();
    assert.equal(result.removed.map((r) => r.kind), ['unpacked'], JSON.stringify(result));
    assert.is(result.kept.length, 1, JSON.stringify(result));
    assert.match(result.kept[0].reason, new RegExp(`in use by process .*\\b${served.ready.pid}\\b`));
    assert.ok(result.freedBytes > 0 && result.freedBytes < 10_000_000, `only the echo image's own files go: ${result.freedBytes}`);
    assert.is((await usage()).unpacked.images, 1);
    // The model process starts only now, from the tree the prune kept.
    const infer = await http(served.ready.http, '/v2/models/iris/infer', { inputs: [{ name: 'input', datatype: 'FP32', shape: [1, 4], data: [5.1, 3.5, 1.4, 0.2] }] });
    assert.is(infer.status, 200, infer.text);
  } finally {
    assert.is(await served.stop(), 0, served.stderr());
  }
});

test('--unused-for keeps a recent image, --dry-run removes nothing, and a prune removes the rest with its shared files', async () => {
  const recent = await prune(['--unused-for', '1h']);
  assert.equal(recent.removed, []);
  assert.match(recent.kept[0].reason, /^used \d+ (s|min) ago$/);

  const dry = await prune(['--dry-run']);
  assert.is(dry.removed.length, 1);
  assert.is((await usage()).unpacked.images, 1, 'a dry run removes nothing');

  const all = await prune();
  assert.is(all.removed.length, 1);
  assert.ok(all.sharedFilesRemoved > 10, `the shared files went with the last tree: ${all.sharedFilesRemoved}`);
  assert.is((await usage()).unpacked.images, 0);
  assert.equal(await readdir(join(cache, 'rootfs/files')), ['.layers'], 'no stored file left');
  // Records of layers without regular files (directories and links only) need nothing stored and may stay.
  for (const name of await readdir(join(cache, 'rootfs/files/.layers'))) {
    const entries = JSON.parse(await readFile(join(cache, 'rootfs/files/.layers', name), 'utf8')) as { stored?: string }[];
    assert.ok(entries.every((e) => e.stored === undefined), `${name} needs files that are gone`);
  }
  // Used again, the image is unpacked again.
  await predict(built.images.iris, IRIS_SAMPLE);
  assert.is((await usage()).unpacked.images, 1);
});

test('prune --blobs keeps the blobs a build holds open, and removes them once it lets go', async () => {
  await pyml(['build', join(REPO, 'examples/onnx-iris'), '--out', join(built.dir, 'iris-held'), '--json'], { env });
  const holder = spawn(process.execPath, ['--import', 'tsx', join(REPO, 'test/serve/hold-blobs.ts')], { cwd: REPO, env: { ...process.env, ...env }, stdio: ['pipe', 'pipe', 'inherit'] });
  try {
    const [line] = (await once(holder.stdout, 'data')) as [Buffer];
    const count = Number(/^held (\d+)/.exec(line.toString())?.[1]);
    assert.ok(count >= 5, line.toString());
    const whileHeld = await prune(['--blobs']);
    const keptBlobs = whileHeld.kept.filter((k) => k.kind === 'blob');
    assert.is(keptBlobs.length, count, JSON.stringify(whileHeld.removed));
    assert.ok(keptBlobs.every((k) => /^in use by process [\d, ]+$/.test(k.reason) && k.reason.split(/\D+/).includes(String(holder.pid))), JSON.stringify(keptBlobs));
  } finally {
    holder.stdin.end();
    await once(holder, 'exit');
  }
  assert.is((await prune(['--blobs'])).removed.filter((r) => r.kind === 'blob').length >= 5, true);
  assert.equal(await readdir(join(cache, 'blobs/sha256')), []);
});

test('prune --blobs empties the blob store but not what was built from it; the next build is a cold one', async () => {
  const out = join(built.dir, 'iris-own-cache');
  const build = async () => parseJson<{ parts: { part: string; reused: boolean }[] }>(await pyml(['build', join(REPO, 'examples/onnx-iris'), '--out', out, '--json'], { env }));
  // What a build killed mid-write leaves (named by its pid), beside a live build's file: the next build removes the first.
  const dead = spawn('true');
  await once(dead, 'exit');
  await mkdir(join(cache, 'tmp'), { recursive: true });
  await writeFile(join(cache, 'tmp', `${dead.pid}-0123456789abcdef`), 'half a layer');
  await writeFile(join(cache, 'tmp', `${process.pid}-0123456789abcdef`), 'a live build\'s layer');
  await build();
  assert.equal(await readdir(join(cache, 'tmp')), [`${process.pid}-0123456789abcdef`]);
  await rm(join(cache, 'tmp', `${process.pid}-0123456789abcdef`));
  const recent = await prune(['--blobs', '--unused-for', '1h']);
  assert.equal(recent.removed.filter((r) => r.kind === 'blob'), [], 'blobs just linked into a layout are recent');
  const all = await prune(['--blobs']);
  assert.ok(all.removed.filter((r) => r.kind === 'blob').length >= 5, JSON.stringify(all.removed));
  assert.equal(await readdir(join(cache, 'blobs/sha256')), []);
  assert.equal(await readdir(join(cache, 'layers')), [], 'no index entry names a pruned blob');
  // The layout keeps its own links: it still verifies and predicts.
  const inspected = await pyml(['inspect', 'image', out, '--json'], { env });
  assert.is(inspected.code, 0, inspected.stderr);
  await predict(out, IRIS_SAMPLE);
  assert.ok((await build()).parts.every((p) => !p.reused), 'nothing left to reuse');
});

test('bad arguments exit 2 and name what was expected', async () => {
  const duration = await pyml(['cache', 'prune', '--unused-for', 'a week'], { env });
  assert.is(duration.code, 2);
  assert.match(duration.stderr, /--unused-for must be a duration such as 30m, 12h or 7d/);
  const verb = await pyml(['cache', 'clean'], { env });
  assert.is(verb.code, 2);
  assert.match(verb.stderr, /unknown cache command 'clean' \(cache commands: du, prune\)/);
});

test.run();
