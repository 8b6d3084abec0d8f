import type { Credentials } from './docker-config.ts';
import { describeErrorBody, httpRequest, readBody } from './http.ts';

export interface Challenge {
  scheme: 'basic' | 'bearer';
  params: Record<string, string>;
}

/** Parses `WWW-Authenticate: Bearer realm="…",service="…",scope="…"` (or Basic). */
export function parseChallenge(header: string | undefined): Challenge | undefined {
  if (!header) return undefined;
  const match = /^\s*(\w+)\s*(.*)$/s.exec(header);
  if (!match) return undefined;
  const scheme = match[1].toLowerCase();
  if (scheme !== 'basic' && scheme !== 'bearer') return undefined;
  const params: Record<string, string> = {};
  for (const p of match[2].matchAll(/(\w+)=(?:"((?:[^"\\]|\\.)*)"|([^,\s]*))/g)) params[p[1].toLowerCase()] = p[2] ?? p[3] ?? '';
  return { scheme, params };
}

export function basicHeader(credentials: Credentials): string {
  return 'Basic ' + Buffer.from(`${credentials.username ?? ''}:${credentials.password ?? ''}`).toString('base64');
}

/**
 * Gets a Bearer token from the challenge's realm for `scopes` (docker's token protocol): a GET with Basic
 * credentials, or an OAuth2 refresh-token POST when the config holds an identity token.
 */
export async function fetchBearerToken(challenge: Challenge, scopes: string[], credentials: Credentials | undefined, registry: string): Promise<string> {
  const realm = challenge.params.realm;
  if (!realm) throw new Error(`registry ${registry} asked for a Bearer token without naming a realm`);
  const service = challenge.params.service;
  let res;
  if (credentials?.identityToken) {
    const form = new URLSearchParams({ grant_type: 'refresh_token', refresh_token: credentials.identityToken, client_id: 'pyml', ...(service ? { service } : {}), scope: scopes.join(' ') });
    res = await httpRequest({ method: 'POST', url: realm, headers: { 'Content-Type': 'application/x-www-form-urlencoded' }, body: Buffer.from(form.toString()) });
  } else {
    const url = new URL(realm);
    if (service) url.searchParams.set('service', service);
    for (const scope of scopes) url.searchParams.append('scope', scope);
    res = await httpRequest({ method: 'GET', url: url.toString(), headers: credentials ? { Authorization: basicHeader(credentials) } : {} });
  }
  if (res.status === 401 || res.status === 403) {
    const detail = await describeErrorBody(res);
    throw new AuthError(credentials
      ? `registry ${registry} refused the credentials for user "${credentials.username ?? '<token>'}" (from ${credentials.from}): token server answered ${res.status}${detail ? ` (${detail})` : ''}`
      : `registry ${registry} requires authentication and there are no credentials for it: run 'docker login ${registry}' or add it to the Docker config's "auths"`);
  }
  if (res.status !== 200) throw new Error(`token server ${realm} answered ${res.status}: ${await describeErrorBody(res)}`);
  const body = JSON.parse((await readBody(res)).toString('utf8')) as { token?: string; access_token?: string };
  const token = body.token ?? body.access_token;
  if (!token) throw new Error(`token server ${realm} returned no token`);
  return token;
}

/** Authentication failed for good: not retried, reported as is. */
export class AuthError extends Error {}
