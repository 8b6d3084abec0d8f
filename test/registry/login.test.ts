/**
 * `pyml login` against Debian's docker-registry: htpasswd Basic auth and the Bearer token flow. Good credentials are
 * saved in the Docker config (mode 0600, other keys kept) or through its credential helper, and `pyml push` then
 * uses them; refused ones save nothing and never print the secret.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { chmod, mkdir, readFile, stat, writeFile } from 'node:fs/promises';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { test } from 'uvu';
import { Ajv } from 'ajv';
import { REPO, parseJson, pyml, runProcess, PYML_BIN, testEnv } from '../helpers/cli.ts';
import { tempDir } from '../helpers/project.ts';
import { startRegistry, type RegistryServer } from '../helpers/registry-server.ts';
import { requireTool } from '../helpers/tools.ts';
import { buildIris, type BuiltImage } from './fixtures.ts';
import { startTokenServer, type TokenServer } from './token-server.ts';

const USER = 'alice';
const PASSWORD = 'correct horse battery staple';
let basic: RegistryServer;
let bearer: RegistryServer;
let tokens: TokenServer;
let iris: BuiltImage;
const validate = new Ajv({ allErrors: true, strict: true }).compile(JSON.parse(readFileSync(path.join(REPO, 'schemas', 'login-output.schema.json'), 'utf8')));

/** pyml login with the password on stdin, as CI does. */
function login(registry: string, password: string, env: Record<string, string>, extra: string[] = []) {
  return runProcess(process.execPath, [PYML_BIN, 'login', registry, '-u', USER, '--password-stdin', ...extra], { env, input: `${password}\n` });
}

test.before(async () => {
  requireTool('openssl');
  basic = await startRegistry({ auth: { username: USER, password: PASSWORD } });
  tokens = await startTokenServer(await tempDir('pyml-token-'), { username: USER, password: PASSWORD });
  bearer = await startRegistry({ token: { realm: tokens.realm, service: tokens.service, issuer: tokens.issuer, rootCertBundle: tokens.certFile } });
  iris = await buildIris();
});
test.after(async () => {
  await basic?.stop();
  await bearer?.stop();
  await tokens?.close();
});

test('Basic auth: checked, saved in a new Docker config (0600), and pyml push then uses it', async () => {
  const dir = path.join(await tempDir('pyml-login-'), 'docker'); // not there yet: login makes it
  const r = await login(basic.host, PASSWORD, { DOCKER_CONFIG: dir }, ['--json']);
  assert.equal(r.code, 0, r.stderr);
  const body = parseJson(r);
  assert.ok(validate(body), JSON.stringify(validate.errors));
  assert.deepEqual(body, { ok: true, registry: basic.host, username: USER, auth: 'basic', savedIn: { kind: 'config', where: path.join(dir, 'config.json') } });
  assert.match(r.stderr, /^warning: the password is saved unencrypted in /m);
  assert.doesNotMatch(r.stdout + r.stderr, /battery/, 'never print the secret');
  const file = path.join(dir, 'config.json');
  assert.equal((await stat(file)).mode & 0o777, 0o600);
  const config = JSON.parse(await readFile(file, 'utf8')) as { auths: Record<string, { auth: string }> };
  assert.equal(Buffer.from(config.auths[basic.host]!.auth, 'base64').toString(), `${USER}:${PASSWORD}`);
  const pushed = await pyml(['push', iris.layout, `${basic.host}/login/iris:1.0.0`, '--json'], { env: { DOCKER_CONFIG: dir } });
  assert.equal(pushed.code, 0, pushed.stderr);
  assert.equal(parseJson<{ digest: string }>(pushed).digest, iris.digest);
});

test('an existing config keeps its other keys and registries; a URL names the same registry', async () => {
  const dir = await tempDir('pyml-login-');
  const before = { auths: { 'other.example.com': { auth: 'b3RoZXI6c2VjcmV0' } }, psFormat: 'table {{.ID}}', detachKeys: 'ctrl-e,e' };
  await writeFile(path.join(dir, 'config.json'), JSON.stringify(before));
  const r = await login(`http://${basic.host}/v2/`, PASSWORD, { DOCKER_CONFIG: dir });
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stdout, new RegExp(`^Login Succeeded: alice at ${basic.host.replace(/\./g, '\\.')} \\(basic auth\\), saved in `));
  const after = JSON.parse(await readFile(path.join(dir, 'config.json'), 'utf8')) as typeof before & { auths: Record<string, { auth: string }> };
  assert.equal(after.psFormat, before.psFormat);
  assert.equal(after.detachKeys, before.detachKeys);
  assert.equal(after.auths['other.example.com']!.auth, 'b3RoZXI6c2VjcmV0');
  assert.ok(after.auths[basic.host]);
});

test('refused credentials: exit 1, the user named, nothing saved, the secret never printed', async () => {
  const dir = await tempDir('pyml-login-');
  const r = await login(basic.host, 'wrong battery', { DOCKER_CONFIG: dir }, ['--json']);
  assert.equal(r.code, 1, r.stderr);
  assert.match(r.stderr, /^error: registry 127\.0\.0\.1:\d+ refused the credentials for user "alice" \(401/m);
  assert.match(r.stderr, /hint: check the user name and password \(or token\); nothing was saved/);
  assert.equal(parseJson<{ ok: boolean }>(r).ok, false);
  assert.ok(validate(parseJson(r)));
  assert.doesNotMatch(r.stdout + r.stderr, /battery/);
  await assert.rejects(stat(path.join(dir, 'config.json')), /ENOENT/);
});

test('Bearer token flow: the token server is asked with the credentials, a refusal names the token server', async () => {
  const dir = await tempDir('pyml-login-');
  const r = await login(bearer.host, PASSWORD, { DOCKER_CONFIG: dir }, ['--json']);
  assert.equal(r.code, 0, r.stderr);
  assert.equal(parseJson<{ auth: string }>(r).auth, 'bearer');
  assert.ok(tokens.requests.some((q) => q.user === USER), JSON.stringify(tokens.requests));
  const pushed = await pyml(['push', iris.layout, `${bearer.host}/team/iris:1.0.0`], { env: { DOCKER_CONFIG: dir } });
  assert.equal(pushed.code, 0, pushed.stderr);
  const refused = await login(bearer.host, 'nope', { DOCKER_CONFIG: await tempDir('pyml-login-') });
  assert.equal(refused.code, 1);
  assert.match(refused.stderr, /refused the credentials for user "alice" \(from pyml login\): token server answered 401/);
});

test('a credential helper named in the config stores them (docker-credential-NAME store); push reads them back', async () => {
  const dir = await tempDir('pyml-login-helper-');
  const bin = path.join(dir, 'bin');
  await mkdir(bin);
  const vault = path.join(dir, 'vault.json');
  // A real helper speaking the protocol: `store` keeps stdin's JSON, `get` answers it for the stored server.
  await writeFile(path.join(bin, 'docker-credential-pymlvault'), `#!/bin/sh
case "$1" in
  store) cat > ${vault} ;;
  get) read server; if [ -f ${vault} ] && grep -q "\\"ServerURL\\":\\"$server\\"" ${vault}; then cat ${vault}; else echo "credentials not found in native keychain"; exit 1; fi ;;
  *) exit 1 ;;
esac
`);
  await chmod(path.join(bin, 'docker-credential-pymlvault'), 0o755);
  await writeFile(path.join(dir, 'config.json'), JSON.stringify({ credHelpers: { [basic.host]: 'pymlvault' } }));
  const env = { DOCKER_CONFIG: dir, PATH: `${bin}:${process.env.PATH}` };
  const r = await login(basic.host, PASSWORD, env, ['--json']);
  assert.equal(r.code, 0, r.stderr);
  assert.deepEqual(parseJson<{ savedIn: unknown }>(r).savedIn, { kind: 'credential-helper', where: 'docker-credential-pymlvault' });
  assert.doesNotMatch(r.stderr, /unencrypted/);
  assert.deepEqual(JSON.parse(await readFile(vault, 'utf8')), { ServerURL: basic.host, Username: USER, Secret: PASSWORD });
  const config = await readFile(path.join(dir, 'config.json'), 'utf8');
  assert.doesNotMatch(config, /battery|auth"/, 'no secret in the config');
  assert.deepEqual((JSON.parse(config) as { auths: unknown }).auths, { [basic.host]: {} });
  const pushed = await pyml(['push', iris.layout, `${basic.host}/helper/iris:1.0.0`], { env });
  assert.equal(pushed.code, 0, pushed.stderr);
});

test('on a terminal, the user name and password are asked for; the password is not echoed', async () => {
  requireTool('script', 'bsdutils');
  const dir = await tempDir('pyml-login-');
  // util-linux script gives pyml a pty; each answer is typed once its prompt is shown, as a person would.
  const child = spawn('script', ['-qec', `${process.execPath} ${PYML_BIN} login ${basic.host}`, '/dev/null'], { env: { ...process.env, ...testEnv(), DOCKER_CONFIG: dir }, stdio: ['pipe', 'pipe', 'pipe'] });
  let screen = '';
  const typed = new Set<string>();
  child.stdout.on('data', (d: Buffer) => {
    screen += d.toString();
    if (screen.includes('Username: ') && !typed.has('user')) { typed.add('user'); child.stdin.write(`${USER}\r`); }
    if (screen.includes('Password: ') && !typed.has('password')) { typed.add('password'); child.stdin.write(`${PASSWORD}\r`); }
  });
  const timer = setTimeout(() => child.kill('SIGKILL'), 60_000);
  const code = await new Promise<number>((resolve) => child.on('close', (c) => resolve(c ?? -1)));
  clearTimeout(timer);
  assert.equal(code, 0, screen);
  assert.match(screen, /Username: [\s\S]*alice\r/, 'the user name echoed as typed');
  assert.match(screen, /Login Succeeded: alice at /);
  assert.doesNotMatch(screen, /battery/, 'the password is not shown');
  const config = JSON.parse(await readFile(path.join(dir, 'config.json'), 'utf8')) as { auths: Record<string, { auth: string }> };
  assert.equal(Buffer.from(config.auths[basic.host]!.auth, 'base64').toString(), `${USER}:${PASSWORD}`);
});

test('usage: a missing user or password off a terminal, both password forms, a bad registry are exit 2; -p warns', async () => {
  const env = { DOCKER_CONFIG: await tempDir('pyml-login-') };
  const noUser = await runProcess(process.execPath, [PYML_BIN, 'login', basic.host, '--password-stdin'], { env, input: 'x\n' });
  assert.equal(noUser.code, 2);
  assert.match(noUser.stderr, /needs a user name: --username USER\n {2}see pyml login --help\n$/);
  const noPassword = await pyml(['login', basic.host, '-u', USER], { env });
  assert.equal(noPassword.code, 2);
  assert.match(noPassword.stderr, /needs a password: --password-stdin/);
  const both = await login(basic.host, PASSWORD, env, ['-p', 'x']);
  assert.equal(both.code, 2);
  assert.match(both.stderr, /give the password once/);
  const bad = await pyml(['login', 'not a host', '-u', USER, '-p', 'x'], { env });
  assert.equal(bad.code, 2);
  assert.match(bad.stderr, /'not a host' is not a registry: expected HOST\[:PORT\]/);
  const flag = await pyml(['login', basic.host, '-u', USER, '-p', PASSWORD], { env });
  assert.equal(flag.code, 0, flag.stderr);
  assert.match(flag.stderr, /^warning: --password on the command line is visible in shell history/m);
});

test.run();
