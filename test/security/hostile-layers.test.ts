import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { createHash } from 'node:crypto';
import { spawn } from 'node:child_process';
import { lstat, mkdir, readdir, readFile, rm, writeFile, chmod } from 'node:fs/promises';
import { join } from 'node:path';
import { readFileSync } from 'node:fs';
import { Ajv } from 'ajv';
import { PYML_BIN, REPO, pyml, testEnv, type CliResult } from '../helpers/cli.ts';
import { tempDir } from '../helpers/project.ts';
import { appendHostileLayers, type HostileEntry, type HostileLayer } from './hostile-image.ts';

/**
 * Hostile layers on top of a real iris image, each run through what reads images: pyml predict (unpack into the
 * cache), pyml inspect image --verify, and for a representative few pyml serve (embedded runner) and pyml batch.
 * After each: nothing outside the cache changed (a sentinel file and directory: contents, modes, mtimes), the
 * cache's other unpacked image is intact, no setuid/setgid bit exists under the cache, nothing half-made is left.
 */

interface Ctx {
  /** The sentinel directory outside the cache, absolute. */
  host: string;
}

/** From any depth up to 64 inside the unpack root, a relative path that climbs to `/` and then to `abs`. */
const climbTo = (abs: string) => '../'.repeat(64) + abs.slice(1);
const DEEP = Array.from({ length: 64 }, () => 'a').join('/');

interface HostileCase {
  name: string;
  layers: (ctx: Ctx) => HostileLayer[];
  /** refused: every command fails naming `entry` (or the size limit); runs: the image works (bits dropped, devices skipped). */
  expect: { refused: string } | { refusedFor: RegExp } | 'runs';
  /** The entries inspect --verify must report ('' for the layer as a whole). */
  verifyNames: string[];
  /** Also through pyml serve and pyml batch. */
  everyCommand?: boolean;
}

const entries = (...list: HostileEntry[]): HostileLayer => ({ entries: list });

const cases: HostileCase[] = [
  {
    name: 'a directory mode applied through a hard link that copied a symlink (issue finding 1)',
    layers: ({ host }) => [entries(
      { name: 'victim/', type: 'directory', mode: 0o6777 },
      { name: `${DEEP}/`, type: 'directory' },
      { name: `${DEEP}/l`, type: 'symlink', linkname: climbTo(join(host, 'secret')) },
      { name: 'victim', type: 'link', linkname: `${DEEP}/l` },
    )],
    expect: { refused: 'victim' }, verifyNames: ['victim/', 'victim'], everyCommand: true,
  },
  {
    name: 'a hard link that copies a symlink to where its text climbs out (no directory entry)',
    layers: ({ host }) => [entries(
      { name: `${DEEP}/`, type: 'directory' },
      { name: `${DEEP}/l`, type: 'symlink', linkname: climbTo(join(host, 'secret')) },
      { name: 'victim', type: 'link', linkname: `${DEEP}/l` },
    )],
    expect: { refused: 'victim' }, verifyNames: ['victim'],
  },
  {
    name: 'a whiteout of ".." at the layer root (issue finding 2)',
    layers: () => [entries({ name: '.wh..', content: '' })],
    expect: { refused: '.wh..' }, verifyNames: ['.wh..'], everyCommand: true,
  },
  {
    name: 'whiteouts of "." and of nothing',
    layers: () => [entries({ name: 'opt/.wh..', content: '' }, { name: '.wh.', content: '' })],
    expect: { refused: 'opt/.wh..' }, verifyNames: ['opt/.wh..', '.wh.'],
  },
  {
    name: 'a setuid-root file and setgid directories (issue finding 3)',
    layers: () => [entries(
      { name: 'usr/local/bin/suid-root', content: '#!/bin/sh\nid\n', mode: 0o4755 },
      { name: 'shared/', type: 'directory', mode: 0o2777 },
      { name: 'shared/both', content: 'x', mode: 0o6755 },
    )],
    expect: 'runs', verifyNames: ['usr/local/bin/suid-root', 'shared/', 'shared/both'], everyCommand: true,
  },
  {
    name: 'a gzip bomb (256 MiB of zeros in 260 KiB; issue finding 5)',
    layers: () => [{ bomb: { name: 'opt/bomb', bytes: 256 * 1024 * 1024 } }],
    expect: { refusedFor: /unpacks to more than 64 MiB, refused as a likely compression bomb/ }, verifyNames: [''], everyCommand: true,
  },
  {
    name: 'a "../" name',
    layers: () => [entries({ name: '../../../../planted', content: 'x' })],
    expect: { refused: '../../../../planted' }, verifyNames: ['../../../../planted'],
  },
  {
    name: 'an absolute path into the sentinel directory',
    layers: ({ host }) => [entries({ name: join(host, 'keep/planted'), content: 'x' })],
    expect: { refused: '' }, verifyNames: [],
  },
  {
    name: 'a write through a symlink that leads out',
    layers: ({ host }) => [entries({ name: 'out', type: 'symlink', linkname: climbTo(join(host, 'keep')) }, { name: 'out/planted', content: 'x' })],
    expect: { refused: 'out' }, verifyNames: ['out'],
  },
  {
    name: 'a hard link to a host file by ".."',
    layers: ({ host }) => [entries({ name: 'stolen', type: 'link', linkname: climbTo(join(host, 'secret')) })],
    expect: { refused: 'stolen' }, verifyNames: ['stolen'],
  },
  {
    name: 'a hard link to a host file by absolute path',
    layers: ({ host }) => [entries({ name: 'stolen', type: 'link', linkname: join(host, 'secret') })],
    expect: { refused: 'stolen' }, verifyNames: ['stolen'],
  },
  {
    name: 'a symlink chain a/up -> .., a/out -> up/.. and a write through it',
    layers: () => [entries(
      { name: 'a/', type: 'directory' }, { name: 'a/up', type: 'symlink', linkname: '..' }, { name: 'a/out', type: 'symlink', linkname: 'up/..' },
      { name: 'a/out/planted', content: 'x' },
    )],
    expect: { refused: 'a/out' }, verifyNames: ['a/out'], everyCommand: true,
  },
  {
    name: 'the same chain made in the order that hides it, across two layers',
    layers: () => [
      entries({ name: 'a/', type: 'directory' }, { name: 'a/out', type: 'symlink', linkname: 'up/..' }),
      entries({ name: 'a/up', type: 'symlink', linkname: '..' }),
    ],
    expect: { refused: 'a/out' }, verifyNames: ['a/out'],
  },
  {
    name: 'a directory (setgid) replaced by a symlink that a later link makes lead out',
    layers: () => [
      entries({ name: 'd/', type: 'directory', mode: 0o2777 }),
      entries({ name: 'd', type: 'symlink', linkname: 'a/up/..' }, { name: 'a/', type: 'directory' }, { name: 'a/up', type: 'symlink', linkname: '..' }),
    ],
    expect: { refused: 'd' }, verifyNames: ['d/', 'd'],
  },
  {
    name: 'a symlink replaced by a directory between layers',
    layers: () => [entries({ name: 'cfg', type: 'symlink', linkname: 'opt' }), entries({ name: 'cfg/', type: 'directory' }, { name: 'cfg/x', content: 'x' })],
    expect: 'runs', verifyNames: [],
  },
  {
    name: 'a file written through an absolute symlink directory made in an earlier layer',
    layers: ({ host }) => [entries({ name: 'hostdir', type: 'symlink', linkname: join(host, 'keep') }), entries({ name: 'hostdir/planted', content: 'x' })],
    expect: { refused: 'hostdir/planted' }, verifyNames: ['hostdir/planted'],
  },
  {
    name: 'a file written through a chained symlink directory made in an earlier layer',
    layers: () => [
      entries({ name: 'a/', type: 'directory' }, { name: 'a/out', type: 'symlink', linkname: 'up/..' }),
      entries({ name: 'a/up', type: 'symlink', linkname: '..' }, { name: 'a/out/planted', content: 'x' }),
    ],
    expect: { refused: 'a/out/planted' }, verifyNames: ['a/out/planted'],
  },
  {
    name: 'an opaque whiteout through a symlink to the sentinel directory',
    layers: ({ host }) => [entries({ name: 'lnk', type: 'symlink', linkname: join(host, 'keep') }), entries({ name: 'lnk/.wh..wh..opq', content: '' })],
    expect: { refused: 'lnk/.wh..wh..opq' }, verifyNames: ['lnk/.wh..wh..opq'],
  },
  {
    name: 'an opaque whiteout and a whiteout inside the image',
    layers: () => [
      entries({ name: 'extra/', type: 'directory' }, { name: 'extra/a', content: 'a' }, { name: 'extra/b', content: 'b' }),
      entries({ name: 'extra/.wh..wh..opq', content: '' }, { name: 'extra/c', content: 'c' }, { name: '.wh.cfg-missing', content: '' }),
    ],
    expect: 'runs', verifyNames: [],
  },
  {
    name: 'a device node',
    layers: () => [entries({ name: 'dev/evil-null', type: 'character-device', mode: 0o666 })],
    expect: 'runs', verifyNames: ['dev/evil-null'],
  },
];

let dir = '';
let ctx: Ctx;
let iris = '';
let cache = '';
let irisTree: Map<string, string>;
let hostBefore: Map<string, string>;
let topBefore: string[];
const ajv = new Ajv({ allErrors: true, strict: false });
const validateInspect = ajv.compile(JSON.parse(readFileSync(join(REPO, 'schemas', 'inspect-output.schema.json'), 'utf8')));

/** The suite's own cache, so what it checks is only what these runs made. */
const env = () => ({ PYML_CACHE_DIR: cache });

/** Path → mode, size, mtime, inode (and content for small files) of everything under `root`. */
async function snapshot(root: string): Promise<Map<string, string>> {
  const out = new Map<string, string>();
  async function walk(path: string, rel: string): Promise<void> {
    const info = await lstat(path);
    let content = '';
    if (info.isFile() && info.size < 64 * 1024) content = createHash('sha256').update(await readFile(path)).digest('hex');
    out.set(rel, `${info.mode.toString(8)} ${info.size} ${info.mtimeMs} ${info.ino} ${content}`);
    if (info.isDirectory()) for (const name of await readdir(path)) await walk(join(path, name), `${rel}/${name}`);
  }
  await walk(root, '');
  return out;
}

/** Every path under the cache with a setuid or setgid bit, and temp files a failed unpack would have left. */
async function cacheProblems(): Promise<string[]> {
  const problems: string[] = [];
  async function walk(path: string): Promise<void> {
    const info = await lstat(path);
    if ((info.mode & 0o6000) !== 0) problems.push(`${path} has mode ${(info.mode & 0o7777).toString(8)}`);
    const base = path.slice(path.lastIndexOf('/') + 1);
    if (base.includes('.unpack-') || base.startsWith('.incoming-')) problems.push(`${path} was left behind`);
    if (info.isDirectory()) for (const name of await readdir(path)) await walk(join(path, name));
  }
  await walk(cache);
  return problems;
}

async function assertNothingOutsideChanged(what: string): Promise<void> {
  assert.equal(await snapshot(ctx.host), hostBefore, `${what}: the sentinel outside the cache is unchanged`);
  assert.equal((await readdir(dir)).filter((n) => n !== 'layouts').sort(), topBefore, `${what}: nothing new beside the cache`);
  assert.equal(await snapshot(join(cache, 'rootfs', irisRootfs)), irisTree, `${what}: the cache's iris tree is intact`);
  assert.equal(await cacheProblems(), [], `${what}: no setuid/setgid bit and no leftovers under the cache`);
}

let irisRootfs = '';

test.before(async () => {
  dir = await tempDir('pyml-hostile-');
  ctx = { host: join(dir, 'host') };
  await mkdir(join(ctx.host, 'keep'), { recursive: true });
  await writeFile(join(ctx.host, 'secret'), 'host secret\n');
  await chmod(join(ctx.host, 'secret'), 0o640);
  await writeFile(join(ctx.host, 'keep/file'), 'kept\n');
  await chmod(join(ctx.host, 'keep'), 0o750);
  cache = join(dir, 'cache');
  iris = join(dir, 'iris');
  // Built with the shared test cache (its base layer is compressed once per run); run with the suite's own.
  const built = await pyml(['build', join(REPO, 'examples/onnx-iris'), '--out', iris, '--json']);
  if (built.code !== 0) throw new Error(`pyml build iris failed: ${built.stderr}`);
  const first = await pyml(['predict', iris, '--input', join(REPO, 'examples/onnx-iris/sample.json'), '--json'], { env: env() });
  if (first.code !== 0) throw new Error(`pyml predict iris failed: ${first.stderr}`);
  irisRootfs = (await readdir(join(cache, 'rootfs'))).find((n) => n.startsWith('sha256-'))!;
  irisTree = await snapshot(join(cache, 'rootfs', irisRootfs));
  hostBefore = await snapshot(ctx.host);
  await mkdir(join(dir, 'out')); // batch's databases
  topBefore = (await readdir(dir)).sort();
});

test.after(async () => {
  await rm(dir, { recursive: true, force: true });
});

/** `pyml serve` on the embedded runner: its exit (a start refused) or, once ready, one REST call and a stop. */
async function serveOnce(layout: string): Promise<{ started: boolean; code: number | null; stderr: string; inferStatus?: number }> {
  const child = spawn(process.execPath, [PYML_BIN, 'serve', layout, '--start', 'eager', '--grpc', '127.0.0.1:0', '--http', '127.0.0.1:0', '--json'], {
    cwd: REPO, env: { ...process.env, ...testEnv(), ...env() }, stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stderr = '';
  let stdout = '';
  child.stderr.on('data', (c: Buffer) => { stderr += c.toString(); });
  const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
  const ready = await new Promise<{ http: string } | undefined>((resolve) => {
    child.stdout.on('data', (c: Buffer) => {
      stdout += c.toString();
      // The ready line is one line of JSON; a failure (--json) prints a multi-line object instead, then exits.
      try {
        const line = JSON.parse(stdout.slice(0, stdout.indexOf('\n'))) as { ready?: boolean; http: string };
        if (line.ready) resolve(line);
      } catch { /* not the ready line */ }
    });
    void exited.then(() => resolve(undefined));
  });
  if (!ready) return { started: false, code: await exited, stderr: stderr + stdout };
  const res = await fetch(`http://${ready.http}/v2/models/iris/infer`, {
    method: 'POST', headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ inputs: [{ name: 'input', datatype: 'FP32', shape: [1, 4], data: [5.1, 3.5, 1.4, 0.2] }] }),
  });
  await res.text();
  child.kill('SIGTERM');
  return { started: true, code: await exited, stderr, inferStatus: res.status };
}

function batchOnce(layout: string, n: number): Promise<CliResult> {
  const csv = join(REPO, 'examples/onnx-iris/sample.csv');
  return pyml(['batch', layout, '--into', 'predictions', '--db', join(dir, 'out', `w${n}.duckdb`), '--keep', 'id', '--workers', '1', '--query',
    `SELECT id, sepal_length::FLOAT, sepal_width::FLOAT, petal_length::FLOAT, petal_width::FLOAT FROM read_csv('${csv}')`], { env: env() });
}

/** The failure names the hostile layer and the entry (and what was expected), or the size limit. */
function assertRefusal(what: string, r: { code: number | null; stderr: string }, c: HostileCase, layers: string[]): void {
  assert.ok(r.code !== 0, `${what} must fail; stderr: ${r.stderr}`);
  if (c.expect === 'runs') return;
  assert.ok(layers.some((l) => r.stderr.includes(`layer ${l}`)), `${what} names the hostile layer: ${r.stderr}`);
  if ('refused' in c.expect) {
    const entry = c.expect.refused;
    if (entry !== '') assert.ok(r.stderr.includes(`entry ${JSON.stringify(entry)}`), `${what} names entry ${entry}: ${r.stderr}`);
    else assert.match(r.stderr, /absolute path refused/);
    assert.match(r.stderr, /refused|must resolve beneath the root/);
  } else {
    assert.match(r.stderr, c.expect.refusedFor);
  }
}

/** PYML_HOSTILE_ONLY=TEXT runs only the cases whose name contains TEXT (when working on one). */
const only = process.env.PYML_HOSTILE_ONLY;

for (const [n, c] of cases.entries()) {
  if (only && !c.name.includes(only)) continue;
  test(`hostile layer: ${c.name}`, async () => {
    const layout = join(dir, 'layouts', String(n));
    const { layers } = await appendHostileLayers(iris, layout, c.layers(ctx));

    // inspect writes nothing: it runs beside predict, and the checks come after both.
    const [predicted, verified] = await Promise.all([
      pyml(['predict', layout, '--input', join(REPO, 'examples/onnx-iris/sample.json'), '--json'], { env: env() }),
      pyml(['inspect', 'image', layout, '--verify', '--json'], { env: env() }),
    ]);
    if (c.expect === 'runs') assert.is(predicted.code, 0, `predict runs: ${predicted.stderr}`);
    else assertRefusal('predict', predicted, c, layers);
    await assertNothingOutsideChanged('after predict and inspect --verify');

    const report = JSON.parse(verified.stdout) as { verified?: boolean; verification: { what: string; ok: boolean; unsafeEntries?: { entry: string; digest: string; problem: string }[] }[] };
    assert.ok(validateInspect(report), `inspect --json matches its schema: ${ajv.errorsText(validateInspect.errors)}`);
    const unsafe = report.verification.flatMap((v) => v.unsafeEntries ?? []);
    const expectedNames = c.expect !== 'runs' && 'refused' in c.expect && c.expect.refused === '' ? [join(ctx.host, 'keep/planted')] : c.verifyNames;
    if (expectedNames.length === 0) {
      assert.is(verified.code, 0, `verify finds nothing unsafe: ${verified.stderr}`);
      assert.is(report.verified, true);
    } else {
      assert.is(verified.code, 1, `verify fails: ${verified.stderr}`);
      assert.is(report.verified, false);
      for (const name of expectedNames) {
        assert.ok(unsafe.some((u) => u.entry === name && layers.includes(u.digest)), `verify names ${JSON.stringify(name)}: ${JSON.stringify(unsafe)}`);
        if (name !== '') assert.ok(verified.stderr.includes(`entry ${JSON.stringify(name)}`), `verify's stderr names ${name}: ${verified.stderr}`);
      }
    }
    assert.ok(unsafe.every((u) => layers.includes(u.digest)), `only hostile layers are reported: ${JSON.stringify(unsafe)}`);

    if (!c.everyCommand) return;
    const served = await serveOnce(layout);
    if (c.expect === 'runs') {
      assert.ok(served.started, `serve starts: ${served.stderr}`);
      assert.is(served.inferStatus, 200, served.stderr);
    } else {
      assert.not.ok(served.started, 'serve refuses to start the image');
      assertRefusal('serve', served, c, layers);
    }
    await assertNothingOutsideChanged('after serve');

    const batched = await batchOnce(layout, n);
    if (c.expect === 'runs') assert.is(batched.code, 0, `batch runs: ${batched.stderr}`);
    else assertRefusal('batch', batched, c, layers);
    await assertNothingOutsideChanged('after batch');
  });
}

if (!only) test('the size limits can be lowered and raised: --max-unpacked-bytes for the image, PYML_MAX_LAYER_EXPANSION for a gzip layer', async () => {
  const small = join(dir, 'layouts', 'limit-small');
  await appendHostileLayers(iris, small, [entries({ name: 'opt/note.txt', content: 'benign' })]);
  const sample = join(REPO, 'examples/onnx-iris/sample.json');
  // The iris layers come from the shared store's records here; their stored files count all the same.
  const lowered = await pyml(['predict', small, '--input', sample, '--max-unpacked-bytes', '1M'], { env: env() });
  assert.is(lowered.code, 1, lowered.stderr);
  assert.match(lowered.stderr, /the image unpacks to more than 1 MiB, the limit; raise it with PYML_MAX_UNPACKED_BYTES or --max-unpacked-bytes/);
  const badFlag = await pyml(['predict', small, '--input', sample, '--max-unpacked-bytes', 'lots'], { env: env() });
  assert.is(badFlag.code, 2, badFlag.stderr);
  assert.match(badFlag.stderr, /--max-unpacked-bytes=lots: expected a size such as 40G/);
  await assertNothingOutsideChanged('after a lowered limit');

  const bomb = join(dir, 'layouts', 'limit-bomb');
  await appendHostileLayers(iris, bomb, [{ bomb: { name: 'opt/zeros', bytes: 256 * 1024 * 1024 } }]);
  const raised = await pyml(['predict', bomb, '--input', sample, '--json'], { env: { ...env(), PYML_MAX_LAYER_EXPANSION: '2000' } });
  assert.is(raised.code, 0, `with the factor raised the big layer is just a big file: ${raised.stderr}`);
  await assertNothingOutsideChanged('after a raised limit');
});

test.run();
