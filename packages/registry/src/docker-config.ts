import { spawn } from 'node:child_process';
import { readFile } from 'node:fs/promises';
import { homedir } from 'node:os';
import { join } from 'node:path';

/** Credentials for one registry, and where they came from (named in errors, never printed themselves). */
export interface Credentials {
  username?: string;
  password?: string;
  /** An OAuth2 refresh token (`identitytoken`), exchanged at a Bearer realm. */
  identityToken?: string;
  from: string;
}

interface DockerConfigFile {
  auths?: Record<string, { auth?: string; username?: string; password?: string; identitytoken?: string }>;
  credHelpers?: Record<string, string>;
  credsStore?: string;
}

export function dockerConfigPath(): string {
  return join(process.env.DOCKER_CONFIG ?? join(homedir(), '.docker'), 'config.json');
}

/**
 * Looks up credentials for `registry` as the docker CLI does: a per-registry credential helper, else the
 * default credentials store, else the inline `auths` entry. Undefined when the config has none (anonymous).
 */
export async function findCredentials(registry: string): Promise<Credentials | undefined> {
  const file = dockerConfigPath();
  let config: DockerConfigFile;
  try {
    config = JSON.parse(await readFile(file, 'utf8')) as DockerConfigFile;
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw new Error(`docker config ${file}: ${(error as Error).message}`);
  }
  const keys = registryKeys(registry);
  const helper = keys.map((k) => config.credHelpers?.[k]).find(Boolean) ?? config.credsStore;
  if (helper) {
    const fromHelper = await askHelper(helper, registry, keys);
    if (fromHelper) return fromHelper;
  }
  for (const key of keys) {
    const entry = config.auths?.[key];
    if (!entry) continue;
    const from = `${file} auths["${key}"]`;
    if (entry.identitytoken) return { identityToken: entry.identitytoken, username: entry.username, from };
    if (entry.auth) {
      const decoded = Buffer.from(entry.auth, 'base64').toString('utf8');
      const colon = decoded.indexOf(':');
      if (colon < 0) throw new Error(`${from}: "auth" is not base64 of USER:PASSWORD`);
      return { username: decoded.slice(0, colon), password: decoded.slice(colon + 1), from };
    }
    if (entry.username !== undefined && entry.password !== undefined) return { username: entry.username, password: entry.password, from };
  }
  return undefined;
}

/** The names a config may key a registry by: bare host, with a scheme, and Docker Hub's legacy URL. */
function registryKeys(registry: string): string[] {
  if (registry === 'docker.io') return ['https://index.docker.io/v1/', 'index.docker.io', 'docker.io', 'registry-1.docker.io'];
  return [registry, `https://${registry}`, `http://${registry}`, `https://${registry}/v1/`, `https://${registry}/v2/`];
}

/** Runs `docker-credential-NAME get` with the server URL on stdin, as the credential-helper protocol says. */
async function askHelper(name: string, registry: string, keys: string[]): Promise<Credentials | undefined> {
  const program = `docker-credential-${name}`;
  for (const server of registry === 'docker.io' ? [keys[0]] : [registry, `https://${registry}`]) {
    const { code, stdout, stderr, spawnError } = await runHelper(program, server);
    if (spawnError) throw new Error(`credential helper ${program} (named in ${dockerConfigPath()}) could not run: ${spawnError}`);
    if (code !== 0) {
      if (/credentials not found/i.test(stdout + stderr)) continue;
      throw new Error(`credential helper ${program} failed for ${server} (exit ${code}): ${(stderr || stdout).trim().slice(0, 300)}`);
    }
    let parsed: { Username?: string; Secret?: string };
    try {
      parsed = JSON.parse(stdout) as { Username?: string; Secret?: string };
    } catch {
      throw new Error(`credential helper ${program} printed something that is not JSON for ${server}`);
    }
    const from = `credential helper ${program}`;
    if (parsed.Username === '<token>') return { identityToken: parsed.Secret, from };
    return { username: parsed.Username, password: parsed.Secret, from };
  }
  return undefined;
}

function runHelper(program: string, input: string): Promise<{ code: number; stdout: string; stderr: string; spawnError?: string }> {
  return new Promise((resolve) => {
    const child = spawn(program, ['get'], { stdio: ['pipe', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d) => (stdout += d));
    child.stderr.on('data', (d) => (stderr += d));
    child.on('error', (error) => resolve({ code: -1, stdout, stderr, spawnError: error.message }));
    child.on('close', (code) => resolve({ code: code ?? -1, stdout, stderr }));
    child.stdin.on('error', () => {});
    child.stdin.end(input);
  });
}
