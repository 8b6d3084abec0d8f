/**
 * `pyml images`: what the cache holds after a real build, and after predict ran the same image from a real registry
 * (pulled into the cache, unpacked to run): one row per manifest digest with name, version, size, last use, how it
 * is held and the reference it was pulled as; `--json` valid against schemas/images-output.schema.json.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { readFileSync } from 'node:fs';
import { rm } from 'node:fs/promises';
import path from 'node:path';
import { Ajv } from 'ajv';
import { REPO, parseJson, pyml } from '../helpers/cli.ts';
import { copyExample, tempDir } from '../helpers/project.ts';
import { startRegistry, type RegistryServer } from '../helpers/registry-server.ts';

interface Row { name: string | null; version: string | null; digest: string; size: number | null; lastUsed: string; held: string[]; refs: string[]; path: string | null }
const validate = new Ajv({ allErrors: true, strict: true }).compile(JSON.parse(readFileSync(path.join(REPO, 'schemas', 'images-output.schema.json'), 'utf8')));
let registry: RegistryServer;
let project = '';
let out = '';

test.before(async () => {
  registry = await startRegistry();
  out = await tempDir('pyml-images-');
  // A name no other test builds, so its row is this test's.
  project = await copyExample('onnx-iris');
  const config = path.join(project, 'pyml.config.ts');
  const { writeFile, readFile } = await import('node:fs/promises');
  await writeFile(config, (await readFile(config, 'utf8')).replace("name: 'iris'", "name: 'images-test-iris'").replace("version: '1.0.0'", `version: '${Date.now()}'`));
});
test.after(async () => {
  await registry?.stop();
  await rm(out, { recursive: true, force: true });
  await rm(project, { recursive: true, force: true });
});

async function images(env: Record<string, string> = {}): Promise<{ ok: boolean; cacheDir: string; images: Row[] }> {
  const r = await pyml(['images', '--json'], { env });
  assert.is(r.code, 0, r.stderr);
  const body = parseJson<{ ok: boolean; cacheDir: string; images: Row[] }>(r);
  if (!validate(body)) assert.unreachable(`pyml images --json does not match its schema: ${JSON.stringify(validate.errors)}`);
  return body;
}

test('an empty cache: an empty list, and a sentence in text', async () => {
  const empty = await tempDir('pyml-images-empty-');
  try {
    assert.equal((await images({ PYML_CACHE_DIR: empty })).images, []);
    const text = await pyml(['images'], { env: { PYML_CACHE_DIR: empty } });
    assert.is(text.code, 0);
    assert.match(text.stdout, /^no images in /);
  } finally {
    await rm(empty, { recursive: true, force: true });
  }
});

test('a build is listed by its digest, with name, version and the size of config and layers', async () => {
  const built = await pyml(['build', project, '--out', path.join(out, 'image'), '--json']);
  assert.is(built.code, 0, built.stderr);
  const result = parseJson<{ digest: string; refName: string; parts: { size: number }[] }>(built);
  const { images: rows } = await images();
  const row = rows.find((r) => r.digest === result.digest);
  assert.ok(row, `digest ${result.digest} among ${rows.length} rows`);
  assert.is(row!.name, 'images-test-iris');
  assert.is(`${row!.name}:${row!.version}`, result.refName);
  assert.equal(row!.held, ['built']);
  const manifest = JSON.parse(readFileSync(path.join(out, 'image', 'blobs', 'sha256', result.digest.slice(7)), 'utf8')) as { config: { size: number }; layers: { size: number }[] };
  assert.is(row!.size, manifest.config.size + manifest.layers.reduce((n, l) => n + l.size, 0));
  assert.ok(Date.now() - Date.parse(row!.lastUsed) < 120_000, `used just now: ${row!.lastUsed}`);
  assert.is(rows[0]!.lastUsed >= row!.lastUsed, true, 'newest use first');
  const text = await pyml(['images']);
  assert.match(text.stdout, /^NAME\s+VERSION\s+DIGEST\s+SIZE\s+LAST USED\s+HELD AS/);
  assert.match(text.stdout, new RegExp(`^images-test-iris\\s+${row!.version}\\s+${result.digest.slice(7, 19)}\\s+[\\d.]+ MiB\\s+\\d+ (s|min) ago\\s+built`, 'm'));
});

test('run from a registry: the same row is also pulled (with its reference) and unpacked', async () => {
  const built = parseJson<{ digest: string }>(await pyml(['inspect', 'image', path.join(out, 'image'), '--json']));
  const ref = `${registry.host}/images-test/iris:1`;
  const pushed = await pyml(['push', path.join(out, 'image'), ref]);
  assert.is(pushed.code, 0, pushed.stderr);
  const predicted = await pyml(['predict', ref, '--input', path.join(REPO, 'examples', 'onnx-iris', 'sample.json')]);
  assert.is(predicted.code, 0, predicted.stderr);
  const row = (await images()).images.find((r) => r.digest === built.digest);
  assert.ok(row);
  assert.equal(row!.held, ['built', 'pulled', 'unpacked']);
  assert.equal(row!.refs, [ref]);
  assert.ok(row!.path?.endsWith(path.join('pulled', built.digest.slice(7))), String(row!.path));
});

test('--filter: reference globs over names and pulled refs, held, since/until; keys AND, a repeated key OR', async () => {
  const built = parseJson<{ digest: string }>(await pyml(['inspect', 'image', path.join(out, 'image'), '--json']));
  const digests = async (...filters: string[]) => {
    const r = await pyml(['images', '--json', ...filters.flatMap((f) => ['--filter', f])]);
    assert.is(r.code, 0, r.stderr);
    const body = parseJson<{ images: Row[] }>(r);
    if (!validate(body)) assert.unreachable(JSON.stringify(validate.errors));
    return body.images.map((i) => i.digest);
  };
  // The shared test cache holds other runs' images-test-iris: this run's version (a timestamp) tells them apart.
  const version = (await images()).images.find((i) => i.digest === built.digest)!.version!;
  assert.equal(await digests(`reference=images-test-iri?:${version}`), [built.digest]);
  assert.equal(await digests(`reference=images-test-iris:${version.slice(0, -3)}*`, 'held=pulled', 'since=1h'), [built.digest]);
  // (Another run's registry may have had the same port: this run's image is among the matches.)
  assert.ok((await digests(`reference=${registry.host}/images-test/*`)).includes(built.digest), 'a pulled reference matches');
  assert.equal(await digests(`reference=${registry.host}/images-test/*`, `reference=nothing`, `reference=images-test-iris:${version}`).then((d) => d.includes(built.digest)), true);
  assert.equal(await digests(`reference=images-test-iris:${version}`, 'until=1h'), [], 'used within the hour: not until 1h');
  assert.equal(await digests(`reference=images-test-iris:${version}`, 'dangling=true'), []);
  assert.equal(await digests('reference=no-such-*', `reference=images-test-iris:${version}`), [built.digest], 'one key twice: either');
  const none = await pyml(['images', '--filter', 'reference=no-such-image']);
  assert.is(none.stdout, 'no images match the filters\n');
  const typo = await pyml(['images', '--filter', 'refrence=x']);
  assert.is(typo.code, 2);
  assert.match(typo.stderr, /--filter key 'refrence' is not known; did you mean 'reference'\?/);
  const held = await pyml(['images', '--filter', 'held=lost']);
  assert.is(held.code, 2);
  assert.match(held.stderr, /held= must be built, pulled, unpacked/);
});

test('usage: no arguments', async () => {
  const r = await pyml(['images', 'iris']);
  assert.is(r.code, 2);
  assert.match(r.stderr, /pyml images takes no arguments/);
});

test.run();
