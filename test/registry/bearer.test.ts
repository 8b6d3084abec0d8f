import assert from 'node:assert/strict';
import path from 'node:path';
import { test } from 'uvu';
import { parseJson, pyml } from '../helpers/cli.ts';
import { tempDir } from '../helpers/project.ts';
import { dockerConfigWith, startRegistry, type RegistryServer } from '../helpers/registry-server.ts';
import { requireTool } from '../helpers/tools.ts';
import { buildIris, type BuiltImage } from './fixtures.ts';
import { startTokenServer, type TokenServer } from './token-server.ts';

const USER = { username: 'bob', password: 's3cret token pass' };
let tokens: TokenServer;
let registry: RegistryServer;
let iris: BuiltImage;

test.before(async () => {
  requireTool('openssl');
  tokens = await startTokenServer(await tempDir('pyml-token-'), USER);
  registry = await startRegistry({ token: { realm: tokens.realm, service: tokens.service, issuer: tokens.issuer, rootCertBundle: tokens.certFile } });
  iris = await buildIris();
});
test.after(async () => {
  await registry?.stop();
  await tokens?.close();
});

test('the registry sends anonymous clients to the token realm', async () => {
  const res = await fetch(`${registry.url}/v2/`);
  assert.equal(res.status, 401);
  assert.match(res.headers.get('www-authenticate') ?? '', /^Bearer realm="http:\/\/127\.0\.0\.1:\d+\/token",service="pyml-test-registry"/);
});

test('push and pull through Bearer tokens obtained with the Docker config credentials', async () => {
  const config = await dockerConfigWith(registry.host, USER.username, USER.password);
  const ref = `${registry.host}/team/iris:1.0.0`;
  const r = await pyml(['push', iris.layout, ref, '--json'], { env: { DOCKER_CONFIG: config } });
  assert.equal(r.code, 0, r.stderr);
  assert.equal(parseJson<{ digest: string }>(r).digest, iris.digest);
  assert.ok(tokens.requests.some((q) => q.user === USER.username && q.scopes.includes('repository:team/iris:pull,push')), JSON.stringify(tokens.requests));
  const pulled = await pyml(['pull', ref, '--out', path.join(await tempDir(), 'pulled'), '--json'], { env: { DOCKER_CONFIG: config } });
  assert.equal(pulled.code, 0, pulled.stderr);
  assert.equal(parseJson<{ digest: string }>(pulled).digest, iris.digest);
});

test('a token server that refuses the credentials: clear error, nothing pushed', async () => {
  const config = await dockerConfigWith(registry.host, USER.username, 'not it');
  const r = await pyml(['push', iris.layout, `${registry.host}/team/refused:1.0.0`], { env: { DOCKER_CONFIG: config } });
  assert.equal(r.code, 1);
  assert.match(r.stderr, /refused the credentials for user "bob" \(from .*config\.json auths\["127\.0\.0\.1:\d+"\]\): token server answered 401 \(UNAUTHORIZED bad credentials\)/);
});

test.run();
