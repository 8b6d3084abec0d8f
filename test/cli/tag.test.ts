/**
 * `pyml tag` against Debian's docker-registry: an image pushed as :1 is tagged :prod (a bare tag) and :stable (full
 * reference, from its digest) without a blob request; the new tags answer the same manifest digest, and the image
 * runs from them; another repository, a missing source and bad references are refused with their exit codes.
 * `--json` valid against schemas/tag-output.schema.json.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { readFileSync } from 'node:fs';
import { rm } from 'node:fs/promises';
import path from 'node:path';
import { Ajv } from 'ajv';
import { REPO, parseJson, pyml } from '../helpers/cli.ts';
import { tempDir } from '../helpers/project.ts';
import { startRegistry, type RegistryServer } from '../helpers/registry-server.ts';

const validate = new Ajv({ allErrors: true, strict: true }).compile(JSON.parse(readFileSync(path.join(REPO, 'schemas', 'tag-output.schema.json'), 'utf8')));
let registry: RegistryServer;
let out = '';
let digest = '';

test.before(async () => {
  registry = await startRegistry();
  out = await tempDir('pyml-tag-');
  const built = await pyml(['build', path.join(REPO, 'examples', 'onnx-iris'), '--out', path.join(out, 'image'), '--json']);
  assert.is(built.code, 0, built.stderr);
  digest = parseJson<{ digest: string }>(built).digest;
  const pushed = await pyml(['push', path.join(out, 'image'), `${registry.host}/tagtest/iris:1`]);
  assert.is(pushed.code, 0, pushed.stderr);
});
test.after(async () => {
  await registry?.stop();
  await rm(out, { recursive: true, force: true });
});

/** The digest the registry answers for a tag (HEAD, as docker and crane ask). */
async function digestOf(tag: string): Promise<string | null> {
  const res = await fetch(`http://${registry.host}/v2/tagtest/iris/manifests/${tag}`, { method: 'HEAD', headers: { accept: 'application/vnd.oci.image.manifest.v1+json, application/vnd.oci.image.index.v1+json' } });
  return res.status === 200 ? res.headers.get('docker-content-digest') : null;
}

test('a bare tag and a full reference from a digest: same manifest digest, no blob moved, and it runs', async () => {
  registry.resetRequests();
  const r = await pyml(['tag', `${registry.host}/tagtest/iris:1`, 'prod', '--json']);
  assert.is(r.code, 0, r.stderr);
  const body = parseJson<Record<string, unknown>>(r);
  if (!validate(body)) assert.unreachable(JSON.stringify(validate.errors));
  assert.equal(body, { ok: true, source: `${registry.host}/tagtest/iris:1`, target: `${registry.host}/tagtest/iris:prod`, digest, mediaType: 'application/vnd.oci.image.manifest.v1+json' });
  const logged = registry.requests();
  assert.ok(logged.some((q) => q.method === 'PUT' && q.path.endsWith('/manifests/prod')), JSON.stringify(logged));
  assert.equal(logged.filter((q) => q.path.includes('/blobs/')), [], 'no blob requests');
  assert.is(await digestOf('prod'), digest);
  const text = await pyml(['tag', `${registry.host}/tagtest/iris@${digest}`, `${registry.host}/tagtest/iris:stable`]);
  assert.is(text.code, 0, text.stderr);
  assert.is(text.stdout, `Tagged ${registry.host}/tagtest/iris:stable (${digest}) from ${registry.host}/tagtest/iris@${digest}\n`);
  assert.is(await digestOf('stable'), digest);
  const ran = await pyml(['predict', `${registry.host}/tagtest/iris:stable`, '--input', path.join(REPO, 'examples', 'onnx-iris', 'sample.json'), '--json']);
  assert.is(ran.code, 0, ran.stderr);
});

test('another repository is a usage error with the pull/push hint; a missing source is exit 1; bad refs exit 2', async () => {
  const other = await pyml(['tag', `${registry.host}/tagtest/iris:1`, `${registry.host}/elsewhere/iris:1`]);
  assert.is(other.code, 2);
  assert.match(other.stderr, /pyml tag tags within one repository/);
  assert.match(other.stderr, /hint: to copy it there: pyml pull .* --out DIR && pyml push DIR /);
  const missing = await pyml(['tag', `${registry.host}/tagtest/iris:nope`, 'prod2'], { env: { PYML_REGISTRY_ATTEMPTS: '1' } });
  assert.is(missing.code, 1);
  assert.match(missing.stderr, /cannot tag .*iris:nope as prod2: .*does not exist/);
  assert.is(await digestOf('prod2'), null);
  const bad = await pyml(['tag', 'Not A Ref', 'x']);
  assert.is(bad.code, 2);
  assert.match(bad.stderr, /SOURCE: not an image reference/);
  const one = await pyml(['tag', `${registry.host}/tagtest/iris:1`]);
  assert.is(one.code, 2);
  assert.match(one.stderr, /pyml tag takes SOURCE and TARGET, got 1/);
});

test.run();
