/**
 * `pyml rmi`: removes a cached image (built manifest, unpacked tree) named by NAME:VERSION or a digest prefix, as
 * pyml images lists it; refuses one a running pyml serve uses (exit 1) and an ambiguous or unknown name (exit 2);
 * the build's own layout is untouched and runs again. `--json` valid against schemas/rmi-output.schema.json.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { type ChildProcess, spawn } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { readFile, rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { createInterface } from 'node:readline';
import { Ajv } from 'ajv';
import { PYML_BIN, REPO, parseJson, pyml, testEnv } from '../helpers/cli.ts';
import { copyExample, tempDir } from '../helpers/project.ts';

const validate = new Ajv({ allErrors: true, strict: true }).compile(JSON.parse(readFileSync(path.join(REPO, 'schemas', 'rmi-output.schema.json'), 'utf8')));
const SAMPLE = path.join(REPO, 'examples', 'onnx-iris', 'sample.json');
let project = '';
let out = '';
// A name and version no other run builds, so every row with it is this test's.
const version = String(Date.now());
const ref = `rmi-test-iris:${version}`;
const digests: string[] = [];

test.before(async () => {
  out = await tempDir('pyml-rmi-');
  project = await copyExample('onnx-iris');
  const config = path.join(project, 'pyml.config.ts');
  await writeFile(config, (await readFile(config, 'utf8')).replace("name: 'iris'", "name: 'rmi-test-iris'").replace("version: '1.0.0'", `version: '${version}'`));
  for (const n of [1, 2]) {
    // Two builds of one NAME:VERSION whose code differs: two digests under one name.
    await writeFile(path.join(project, 'src', 'model.ts'), `${await readFile(path.join(REPO, 'examples', 'onnx-iris', 'src', 'model.ts'), 'utf8')}\n// build ${n}\n`);
    const built = await pyml(['build', project, '--out', path.join(out, `image${n}`), '--json']);
    assert.is(built.code, 0, built.stderr);
    digests.push(parseJson<{ digest: string }>(built).digest);
  }
});
test.after(async () => {
  await rm(out, { recursive: true, force: true });
  await rm(project, { recursive: true, force: true });
});

const rows = async () => parseJson<{ images: { digest: string; held: string[] }[] }>(await pyml(['images', '--json'])).images;
const rootfsOf = (digest: string) => path.join(testEnv().PYML_CACHE_DIR!, 'rootfs', digest.replace(':', '-'));

async function rmi(args: string[]) {
  const r = await pyml(['rmi', ...args, '--json']);
  const body = parseJson<Record<string, unknown>>(r);
  if (!validate(body)) assert.unreachable(`pyml rmi --json does not match its schema: ${JSON.stringify(validate.errors)}`);
  return { ...r, body };
}

test('a name of two images is refused with their digests; an unknown one is exit 2', async () => {
  const r = await rmi([ref]);
  assert.is(r.code, 2);
  const message = (r.body.error as { message: string }).message;
  assert.match(message, new RegExp(`${ref} names 2 images`));
  for (const d of digests) assert.ok(message.includes(d.slice(7, 19)), message);
  const none = await pyml(['rmi', 'no-such-image:0']);
  assert.is(none.code, 2);
  assert.match(none.stderr, /no image no-such-image:0 in the cache/);
  assert.equal((await rows()).filter((i) => digests.includes(i.digest)).length, 2, 'nothing removed');
});

test('an image a running pyml serve uses is kept (exit 1, the pid named); once it stopped, it goes', async () => {
  const layout = path.join(out, 'image1');
  const ran = await pyml(['predict', layout, '--input', SAMPLE]);
  assert.is(ran.code, 0, ran.stderr);
  assert.ok(existsSync(rootfsOf(digests[0]!)), 'unpacked by predict');
  const serve: ChildProcess = spawn(process.execPath, [PYML_BIN, 'serve', layout, '--grpc', '127.0.0.1:0', '--http', '127.0.0.1:0', '--json'], { env: { ...process.env, ...testEnv() }, stdio: ['ignore', 'pipe', 'pipe'] });
  try {
    await new Promise<void>((resolve, reject) => {
      createInterface({ input: serve.stdout! }).once('line', () => resolve());
      serve.once('exit', (code) => reject(new Error(`pyml serve exited ${code}`)));
    });
    const busy = await rmi([digests[0]!.slice(7, 19)]);
    assert.is(busy.code, 1);
    assert.equal(busy.body.removed, []);
    assert.match(String((busy.body.failures as string[])[0]), new RegExp(`in use by process ${serve.pid}\\b.*stop it first`));
    assert.ok(existsSync(rootfsOf(digests[0]!)));
  } finally {
    const exited = new Promise((r) => serve.once('exit', r));
    serve.kill('SIGTERM');
    await exited;
  }
  const r = await rmi([digests[0]!.slice(7, 19), `sha256:${digests[1]!.slice(7)}`]);
  assert.is(r.code, 0, r.stderr);
  assert.equal(r.body, { ok: true, removed: [
    { digest: digests[0], name: 'rmi-test-iris', version, removed: ['built', 'unpacked'] },
    { digest: digests[1], name: 'rmi-test-iris', version, removed: ['built'] },
  ] });
  assert.equal((await rows()).filter((i) => digests.includes(i.digest)), [], 'pyml images no longer lists them');
  assert.not.ok(existsSync(rootfsOf(digests[0]!)), 'the unpacked tree is gone');
  // The build's layout is the user's: it runs again (unpacked anew).
  const again = await pyml(['predict', layout, '--input', SAMPLE, '--json']);
  assert.is(again.code, 0, again.stderr);
});

test('usage: no IMAGE', async () => {
  const r = await pyml(['rmi']);
  assert.is(r.code, 2);
  assert.match(r.stderr, /pyml rmi needs an IMAGE/);
});

test.run();
