import assert from 'node:assert/strict';
import { chmod, mkdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { test } from 'uvu';
import { parseJson, pyml } from '../helpers/cli.ts';
import { tempDir } from '../helpers/project.ts';
import { dockerConfigWith, startRegistry, type RegistryServer } from '../helpers/registry-server.ts';
import { requireTool } from '../helpers/tools.ts';
import { buildIris, manifestStatus, skopeoInspect, type BuiltImage } from './fixtures.ts';

const USER = 'alice';
const PASSWORD = 'correct horse battery staple';
const basic = (u: string, p: string) => 'Basic ' + Buffer.from(`${u}:${p}`).toString('base64');

let registry: RegistryServer;
let iris: BuiltImage;

test.before(async () => {
  requireTool('skopeo');
  registry = await startRegistry({ auth: { username: USER, password: PASSWORD } });
  iris = await buildIris();
});
test.after(async () => { await registry?.stop(); });

test('the registry really requires the password (htpasswd Basic auth)', async () => {
  assert.equal((await fetch(`${registry.url}/v2/`)).status, 401);
  assert.equal((await fetch(`${registry.url}/v2/`, { headers: { Authorization: basic(USER, PASSWORD) } })).status, 200);
});

test('push with credentials from DOCKER_CONFIG auths', async () => {
  const config = await dockerConfigWith(registry.host, USER, PASSWORD);
  const ref = `${registry.host}/private/iris:1.0.0`;
  const r = await pyml(['push', iris.layout, ref, '--json'], { env: { DOCKER_CONFIG: config } });
  assert.equal(r.code, 0, r.stderr);
  assert.equal(parseJson<{ digest: string }>(r).digest, iris.digest);
  assert.equal((await skopeoInspect(ref, `${USER}:${PASSWORD}`)).Digest, iris.digest);
  // And back: pull and inspect through the same credentials.
  const out = path.join(await tempDir(), 'pulled');
  const pulled = await pyml(['pull', ref, '--out', out, '--json'], { env: { DOCKER_CONFIG: config } });
  assert.equal(pulled.code, 0, pulled.stderr);
  assert.equal(parseJson<{ digest: string }>(pulled).digest, iris.digest);
});

test('credentials from a credential helper (credHelpers, docker-credential-NAME get)', async () => {
  const dir = await tempDir('pyml-helper-');
  const bin = path.join(dir, 'bin');
  await mkdir(bin);
  // A real helper program speaking the protocol: server URL on stdin, JSON on stdout.
  await writeFile(path.join(bin, 'docker-credential-pymltest'), `#!/bin/sh
read server
case "$server" in
  *${registry.host}*) printf '{"ServerURL":"%s","Username":"${USER}","Secret":"${PASSWORD}"}' "$server" ;;
  *) echo "credentials not found in native keychain"; exit 1 ;;
esac
`);
  await chmod(path.join(bin, 'docker-credential-pymltest'), 0o755);
  await writeFile(path.join(dir, 'config.json'), JSON.stringify({ credHelpers: { [registry.host]: 'pymltest' } }));
  const ref = `${registry.host}/helper/iris:1.0.0`;
  const r = await pyml(['push', iris.layout, ref, '--json'], { env: { DOCKER_CONFIG: dir, PATH: `${bin}:${process.env.PATH}` } });
  assert.equal(r.code, 0, r.stderr);
  assert.equal((await skopeoInspect(ref, `${USER}:${PASSWORD}`)).Digest, iris.digest);
});

test('refused credentials: a clear error naming the user and the config, and no manifest', async () => {
  const config = await dockerConfigWith(registry.host, USER, 'wrong password');
  const r = await pyml(['push', iris.layout, `${registry.host}/refused/iris:1.0.0`], { env: { DOCKER_CONFIG: config } });
  assert.equal(r.code, 1);
  assert.match(r.stderr, /refused the credentials for user "alice"/);
  assert.ok(r.stderr.includes(path.join(config, 'config.json')), r.stderr);
  assert.doesNotMatch(r.stderr, /wrong password/, 'never print the secret');
  assert.equal(await manifestStatus(registry.url, 'refused/iris', '1.0.0', basic(USER, PASSWORD)), 404);
});

test('no credentials at all: says how to provide them', async () => {
  const empty = await tempDir('pyml-no-config-');
  const r = await pyml(['push', iris.layout, `${registry.host}/anon/iris:1.0.0`], { env: { DOCKER_CONFIG: empty } });
  assert.equal(r.code, 1);
  assert.match(r.stderr, /requires authentication and there are no credentials for it: run 'docker login 127\.0\.0\.1:\d+'/);
  const missingHelper = await tempDir('pyml-bad-helper-');
  await writeFile(path.join(missingHelper, 'config.json'), JSON.stringify({ credsStore: 'does-not-exist' }));
  const h = await pyml(['push', iris.layout, `${registry.host}/anon/iris:1.0.0`], { env: { DOCKER_CONFIG: missingHelper } });
  assert.equal(h.code, 1);
  assert.match(h.stderr, /credential helper docker-credential-does-not-exist .* could not run/);
});

test.run();
