import { spawn } from 'node:child_process';
import { chmod, mkdir, readFile, rename, rm, writeFile } from 'node:fs/promises';
import { dirname } from 'node:path';
import { AuthError, basicHeader, fetchBearerToken, parseChallenge } from './auth.ts';
import { dockerConfigPath, type Credentials } from './docker-config.ts';
import { describeErrorBody, discardBody, httpRequest } from './http.ts';
import { registryBaseUrl } from './reference.ts';
import { withRetries } from './registry-client.ts';

export interface LoginCheck {
  /** What the registry's /v2/ asked for: `none` when it answers without credentials. */
  auth: 'basic' | 'bearer' | 'none';
}

export interface SavedCredentials {
  kind: 'config' | 'credential-helper';
  /** The config file written, or the helper program run. */
  where: string;
}

/**
 * `HOST[:PORT]` from what a user types after `login`: a bare host, or a URL (`https://host:5000/v2/`), as docker login
 * takes. Docker Hub's names become `docker.io`.
 */
export function registryHost(input: string): string {
  const host = input.trim().replace(/^[a-z]+:\/\//i, '').replace(/\/.*$/, '').toLowerCase();
  if (!host || /[\s@]/.test(host) || !/^[a-z0-9.-]+(:\d+)?$|^\[[0-9a-f:]+\](:\d+)?$/.test(host)) throw new Error(`'${input}' is not a registry: expected HOST[:PORT], such as registry.example.com or 127.0.0.1:5000`);
  return ['index.docker.io', 'registry-1.docker.io', 'docker.io'].includes(host) ? 'docker.io' : host;
}

/**
 * Checks credentials the way docker login does: GET /v2/; on a Basic challenge, again with them; on a Bearer
 * challenge, a token from the realm for them (no scope), then GET /v2/ with it. Throws AuthError when refused.
 */
export async function checkCredentials(registry: string, credentials: Credentials, onRetry: (message: string) => void = () => {}): Promise<LoginCheck> {
  const url = new URL('/v2/', registryBaseUrl(registry)).toString();
  const get = (authorization?: string) => withRetries(Number(process.env.PYML_REGISTRY_ATTEMPTS) || 4, `logging in to ${registry}`, registry, onRetry,
    () => httpRequest({ method: 'GET', url, headers: authorization ? { Authorization: authorization } : {} }));
  const first = await get();
  if (first.status === 200) {
    await discardBody(first);
    return { auth: 'none' };
  }
  if (first.status !== 401) throw new Error(`${registry} is not an OCI registry, or not a working one: GET /v2/ answered ${first.status}${await describeSuffix(first)}`);
  const challenge = parseChallenge(first.headers['www-authenticate'] as string | undefined);
  await discardBody(first);
  if (!challenge) throw new AuthError(`registry ${registry} answered 401 without a usable WWW-Authenticate challenge`);
  const authorization = challenge.scheme === 'basic'
    ? basicHeader(credentials)
    : `Bearer ${await fetchBearerToken(challenge, [], credentials, registry)}`;
  const second = await get(authorization);
  if (second.status === 200) {
    await discardBody(second);
    return { auth: challenge.scheme };
  }
  const detail = await describeSuffix(second);
  if (second.status === 401 || second.status === 403) throw new AuthError(`registry ${registry} refused the credentials for user "${credentials.username ?? ''}" (${second.status}${detail})`);
  throw new Error(`registry ${registry}: GET /v2/ with credentials answered ${second.status}${detail}`);
}

async function describeSuffix(res: Parameters<typeof describeErrorBody>[0]): Promise<string> {
  const detail = await describeErrorBody(res);
  return detail ? `: ${detail}` : '';
}

interface DockerConfigFile {
  auths?: Record<string, Record<string, unknown>>;
  credHelpers?: Record<string, string>;
  credsStore?: string;
  [key: string]: unknown;
}

/** The key docker login saves a registry under (Docker Hub keeps its legacy URL). */
function configKey(registry: string): string {
  return registry === 'docker.io' ? 'https://index.docker.io/v1/' : registry;
}

/**
 * Saves credentials as docker login does: through the credential helper the Docker config names for this registry
 * (`credHelpers`) or for all (`credsStore`), with `docker-credential-NAME store`, leaving an empty `auths` entry;
 * else base64 `user:password` in `auths`. The config ($DOCKER_CONFIG/config.json or ~/.docker/config.json) keeps
 * every other key; it is written to a temp name with mode 0600 and renamed into place.
 */
export async function saveCredentials(registry: string, username: string, password: string): Promise<SavedCredentials> {
  const file = dockerConfigPath();
  let config: DockerConfigFile = {};
  try {
    config = JSON.parse(await readFile(file, 'utf8')) as DockerConfigFile;
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'ENOENT') throw new Error(`docker config ${file}: ${(error as Error).message}; fix or remove it, then log in again`);
  }
  if (typeof config !== 'object' || config === null || Array.isArray(config)) throw new Error(`docker config ${file}: expected a JSON object`);
  const key = configKey(registry);
  const helper = config.credHelpers?.[key] ?? config.credHelpers?.[registry] ?? config.credsStore;
  const auths = { ...(config.auths ?? {}) };
  let saved: SavedCredentials;
  if (helper) {
    const program = `docker-credential-${helper}`;
    await runHelper(program, 'store', JSON.stringify({ ServerURL: key, Username: username, Secret: password }), file);
    auths[key] = {};
    saved = { kind: 'credential-helper', where: program };
  } else {
    auths[key] = { auth: Buffer.from(`${username}:${password}`).toString('base64') };
    saved = { kind: 'config', where: file };
  }
  await writeConfig(file, { ...config, auths });
  return saved;
}

export interface RemovedCredentials {
  /** Whether anything was stored for the registry (docker logout: "Not logged in" otherwise). */
  removed: boolean;
  /** The helper that erased them, when one keeps them. */
  helper?: string;
  /** The config file. */
  config: string;
}

/**
 * Forgets a registry's credentials as docker logout does: `docker-credential-NAME erase` with its server URL when a
 * helper keeps them (credHelpers or credsStore), and its `auths` entry; the config is rewritten (temp + rename,
 * 0600) only when it held one. A helper that has none is not an error.
 */
export async function removeCredentials(registry: string): Promise<RemovedCredentials> {
  const file = dockerConfigPath();
  let config: DockerConfigFile;
  try {
    config = JSON.parse(await readFile(file, 'utf8')) as DockerConfigFile;
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return { removed: false, config: file };
    throw new Error(`docker config ${file}: ${(error as Error).message}; fix or remove it`);
  }
  if (typeof config !== 'object' || config === null || Array.isArray(config)) throw new Error(`docker config ${file}: expected a JSON object`);
  const key = configKey(registry);
  const entries = [key, registry].filter((k, i, all) => all.indexOf(k) === i && config.auths && Object.hasOwn(config.auths, k));
  const helperName = config.credHelpers?.[key] ?? config.credHelpers?.[registry] ?? config.credsStore;
  let erased = false;
  if (helperName) {
    const program = `docker-credential-${helperName}`;
    try {
      await runHelper(program, 'erase', key, file);
      erased = true;
    } catch (error) {
      // Helpers say so when they hold nothing for the server; anything else is a real failure.
      if (!/not found|no credentials/i.test((error as Error).message)) throw error;
    }
  }
  if (entries.length) {
    const auths = { ...config.auths };
    for (const k of entries) delete auths[k];
    await writeConfig(file, { ...config, auths });
  }
  return { removed: erased || entries.length > 0, ...(helperName && erased ? { helper: `docker-credential-${helperName}` } : {}), config: file };
}

async function writeConfig(file: string, config: DockerConfigFile): Promise<void> {
  await mkdir(dirname(file), { recursive: true, mode: 0o700 });
  const temp = `${file}.${process.pid}.tmp`;
  try {
    await writeFile(temp, `${JSON.stringify(config, null, '\t')}\n`, { mode: 0o600 });
    await chmod(temp, 0o600); // the umask may have narrowed it; it must not be wider either
    await rename(temp, file);
  } catch (error) {
    await rm(temp, { force: true });
    throw new Error(`cannot write the docker config ${file}: ${(error as Error).message}`);
  }
}

/**
 * `docker-credential-NAME store` (the credentials as JSON on stdin) or `erase` (the server URL on stdin): the
 * credential-helper protocol.
 */
function runHelper(program: string, action: 'store' | 'erase', input: string, configFile: string): Promise<void> {
  return new Promise((resolve, reject) => {
    const child = spawn(program, [action], { stdio: ['pipe', 'pipe', 'pipe'] });
    let output = '';
    child.stdout.on('data', (d) => (output += d));
    child.stderr.on('data', (d) => (output += d));
    child.on('error', (error) => reject(new Error(`credential helper ${program} (named in ${configFile}) could not run: ${error.message}`)));
    child.on('close', (code) => {
      if (code === 0) resolve();
      else reject(new Error(`credential helper ${program} failed to ${action} the credentials (exit ${code}): ${output.trim().slice(0, 300)}`));
    });
    child.stdin.on('error', () => {});
    child.stdin.end(input);
  });
}
