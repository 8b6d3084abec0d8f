import { execFileSync } from 'node:child_process';
import { generateKeyPairSync, randomBytes, sign, type KeyObject } from 'node:crypto';
import { readFile, writeFile } from 'node:fs/promises';
import { createServer, type Server } from 'node:http';
import path from 'node:path';

export interface TokenServer {
  realm: string;
  service: string;
  issuer: string;
  /** The certificate the registry must trust (rootcertbundle). */
  certFile: string;
  /** Scopes asked for, one array per token request. */
  requests: { scopes: string[]; user?: string }[];
  close(): Promise<void>;
}

/**
 * A small Docker token server (the protocol of auth.docker.io): checks Basic credentials and returns a JWT, signed
 * with ES256 and carrying its certificate in `x5c`, granting exactly the scopes asked for.
 */
export async function startTokenServer(dir: string, user: { username: string; password: string }): Promise<TokenServer> {
  const { privateKey } = generateKeyPairSync('ec', { namedCurve: 'prime256v1' });
  const keyFile = path.join(dir, 'token-key.pem');
  const certFile = path.join(dir, 'token-cert.pem');
  await writeFile(keyFile, privateKey.export({ type: 'pkcs8', format: 'pem' }));
  execFileSync('openssl', ['req', '-x509', '-new', '-key', keyFile, '-subj', '/CN=pyml-test-token', '-days', '1', '-out', certFile], { stdio: 'ignore' });
  const der = (await readFile(certFile, 'utf8')).replace(/-----[^-]+-----|\s/g, '');
  const service = 'pyml-test-registry';
  const issuer = 'pyml-test-issuer';
  const requests: TokenServer['requests'] = [];
  const server: Server = createServer((req, res) => {
    const url = new URL(req.url ?? '/', 'http://127.0.0.1');
    const scopes = url.searchParams.getAll('scope');
    const header = req.headers.authorization ?? '';
    const decoded = header.startsWith('Basic ') ? Buffer.from(header.slice(6), 'base64').toString() : '';
    const [name, ...rest] = decoded.split(':');
    requests.push({ scopes, user: decoded ? name : undefined });
    if (url.pathname !== '/token' || name !== user.username || rest.join(':') !== user.password) {
      res.writeHead(401, { 'Content-Type': 'application/json' }).end(JSON.stringify({ errors: [{ code: 'UNAUTHORIZED', message: 'bad credentials' }] }));
      return;
    }
    const access = scopes.map((s) => {
      const [type, repo, actions] = s.split(':');
      return { type, name: repo, actions: (actions ?? '').split(',').filter(Boolean) };
    });
    const token = jwt(privateKey, der, { iss: issuer, sub: name, aud: service, access });
    res.writeHead(200, { 'Content-Type': 'application/json' }).end(JSON.stringify({ token, expires_in: 300, issued_at: new Date().toISOString() }));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as { port: number };
  return {
    realm: `http://127.0.0.1:${port}/token`, service, issuer, certFile, requests,
    close: () => new Promise((resolve) => server.close(() => resolve())),
  };
}

function jwt(key: KeyObject, certDer: string, claims: Record<string, unknown>): string {
  const now = Math.floor(Date.now() / 1000);
  const b64 = (v: unknown) => Buffer.from(JSON.stringify(v)).toString('base64url');
  const body = `${b64({ alg: 'ES256', typ: 'JWT', x5c: [certDer] })}.${b64({ ...claims, iat: now, nbf: now - 10, exp: now + 300, jti: randomBytes(8).toString('hex') })}`;
  const signature = sign('sha256', Buffer.from(body), { key, dsaEncoding: 'ieee-p1363' }).toString('base64url');
  return `${body}.${signature}`;
}
