/**
 * `pyml logout REGISTRY`: forgets what docker login / pyml login saved, as docker logout does: the config's `auths`
 * entry (other keys and registries kept, mode 0600) and, through a real credential helper, `erase` with the server
 * URL on stdin; not being logged in is exit 0 and says so. `--json` valid against schemas/logout-output.schema.json.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { readFileSync } from 'node:fs';
import { chmod, mkdir, readFile, rm, stat, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { Ajv } from 'ajv';
import { REPO, parseJson, pyml } from '../helpers/cli.ts';
import { tempDir } from '../helpers/project.ts';

const validate = new Ajv({ allErrors: true, strict: true }).compile(JSON.parse(readFileSync(path.join(REPO, 'schemas', 'logout-output.schema.json'), 'utf8')));
let dir = '';

test.before(async () => { dir = await tempDir('pyml-logout-'); });
test.after(async () => { await rm(dir, { recursive: true, force: true }); });

async function logout(registry: string, env: Record<string, string>, json = true) {
  const r = await pyml(['logout', registry, ...(json ? ['--json'] : [])], { env });
  if (json) {
    const body = parseJson<Record<string, unknown>>(r);
    if (!validate(body)) assert.unreachable(`pyml logout --json does not match its schema: ${JSON.stringify(validate.errors)}`);
    return { ...r, body };
  }
  return { ...r, body: {} };
}

test('the auths entry goes, other registries and keys stay; the config stays 0600; a second logout is "not logged in"', async () => {
  const config = path.join(dir, 'plain');
  await mkdir(config);
  const auth = Buffer.from('alice:secret').toString('base64');
  await writeFile(path.join(config, 'config.json'), JSON.stringify({ auths: { '127.0.0.1:5000': { auth }, 'other.example:443': { auth } }, psFormat: 'table {{.ID}}' }), { mode: 0o600 });
  const env = { DOCKER_CONFIG: config };
  const r = await logout('http://127.0.0.1:5000/v2/', env);
  assert.is(r.code, 0, r.stderr);
  assert.equal(r.body, { ok: true, registry: '127.0.0.1:5000', removed: true, config: path.join(config, 'config.json') });
  const after = JSON.parse(await readFile(path.join(config, 'config.json'), 'utf8')) as Record<string, unknown>;
  assert.equal(after, { auths: { 'other.example:443': { auth } }, psFormat: 'table {{.ID}}' });
  assert.is((await stat(path.join(config, 'config.json'))).mode & 0o777, 0o600);
  const again = await logout('127.0.0.1:5000', env, false);
  assert.is(again.code, 0, again.stderr);
  assert.match(again.stdout, /^Not logged in to 127\.0\.0\.1:5000/);
  // No config at all: not logged in either.
  const none = await logout('127.0.0.1:5000', { DOCKER_CONFIG: path.join(dir, 'nowhere') });
  assert.is(none.code, 0);
  assert.is(none.body.removed, false);
});

test('a credential helper keeps them: erase is run with the server URL; a helper with nothing is "not logged in"', async () => {
  const config = path.join(dir, 'helper');
  const bin = path.join(config, 'bin');
  await mkdir(bin, { recursive: true });
  const vault = path.join(config, 'vault.txt');
  const erased = path.join(config, 'erased.txt');
  // A real helper speaking the protocol: `erase` reads the server URL on stdin and forgets it, or says it has none.
  await writeFile(path.join(bin, 'docker-credential-pymltest'), `#!/bin/sh
case "$1" in
  erase) read server; echo "$server" >> ${erased}; if grep -qx "$server" ${vault} 2>/dev/null; then grep -vx "$server" ${vault} > ${vault}.new; mv ${vault}.new ${vault}; else echo "credentials not found in native keychain"; exit 1; fi ;;
  *) exit 1 ;;
esac
`);
  await chmod(path.join(bin, 'docker-credential-pymltest'), 0o755);
  await writeFile(vault, 'registry.example:5000\nkeep.example\n');
  await writeFile(path.join(config, 'config.json'), JSON.stringify({ credsStore: 'pymltest', auths: { 'registry.example:5000': {} } }));
  const env = { DOCKER_CONFIG: config, PATH: `${bin}:${process.env.PATH}` };
  const r = await logout('registry.example:5000', env);
  assert.is(r.code, 0, r.stderr);
  assert.equal(r.body, { ok: true, registry: 'registry.example:5000', removed: true, config: path.join(config, 'config.json'), helper: 'docker-credential-pymltest' });
  assert.is(await readFile(vault, 'utf8'), 'keep.example\n');
  assert.equal(JSON.parse(await readFile(path.join(config, 'config.json'), 'utf8')), { credsStore: 'pymltest', auths: {} });
  const again = await logout('registry.example:5000', env);
  assert.is(again.code, 0, again.stderr);
  assert.is(again.body.removed, false);
  assert.is(await readFile(erased, 'utf8'), 'registry.example:5000\nregistry.example:5000\n', 'the helper was asked both times, with the server URL');
});

test('a helper that fails otherwise is exit 1 naming it; usage errors are exit 2', async () => {
  const config = path.join(dir, 'broken');
  const bin = path.join(config, 'bin');
  await mkdir(bin, { recursive: true });
  await writeFile(path.join(bin, 'docker-credential-pymlbroken'), '#!/bin/sh\necho "keychain is locked"; exit 3\n');
  await chmod(path.join(bin, 'docker-credential-pymlbroken'), 0o755);
  await writeFile(path.join(config, 'config.json'), JSON.stringify({ credHelpers: { 'r.example': 'pymlbroken' } }));
  const r = await logout('r.example', { DOCKER_CONFIG: config, PATH: `${bin}:${process.env.PATH}` });
  assert.is(r.code, 1);
  assert.match(String((r.body.error as { message: string }).message), /docker-credential-pymlbroken failed to erase the credentials \(exit 3\): keychain is locked/);
  const none = await pyml(['logout']);
  assert.is(none.code, 2);
  assert.match(none.stderr, /pyml logout takes one REGISTRY/);
  const bad = await pyml(['logout', 'not a host']);
  assert.is(bad.code, 2);
  assert.match(bad.stderr, /is not a registry/);
});

test.run();
