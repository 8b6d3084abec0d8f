import { spawn, execFileSync, type ChildProcess } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { requireTool } from './tools.ts';

/** One line of the registry's access log. */
export interface LoggedRequest {
  method: string;
  path: string;
  status: number;
}

export interface RegistryServer {
  /** `127.0.0.1:PORT`: what image references start with. */
  host: string;
  port: number;
  url: string;
  dir: string;
  pid: number;
  /** Requests the registry has answered so far, from its own access log (not from our client). */
  requests(): LoggedRequest[];
  /** Forgets the requests logged so far. */
  resetRequests(): void;
  stop(): Promise<void>;
}

export interface RegistryOptions {
  /** htpasswd Basic auth with this one user. */
  auth?: { username: string; password: string };
  /** Bearer-token auth: the registry sends clients to `realm` and trusts tokens signed by the cert in `rootCertBundle`. */
  token?: { realm: string; service: string; issuer: string; rootCertBundle: string };
}

/** A free TCP port on 127.0.0.1 (released just before use; fine for tests on one machine). */
export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as { port: number };
      server.close(() => resolve(port));
    });
  });
}

/**
 * Starts Debian's `docker-registry serve` on 127.0.0.1 with filesystem storage in a temp dir (and htpasswd auth
 * when asked). Stopped by pid; its storage is removed.
 */
export async function startRegistry(options: RegistryOptions = {}): Promise<RegistryServer> {
  requireTool('docker-registry');
  const dir = await mkdtemp(path.join(tmpdir(), 'pyml-registry-'));
  const port = await freePort();
  let auth = '';
  if (options.auth) {
    requireTool('htpasswd', 'apache2-utils');
    const file = path.join(dir, 'htpasswd');
    execFileSync('htpasswd', ['-Bbc', file, options.auth.username, options.auth.password], { stdio: 'ignore' });
    auth = `auth:\n  htpasswd:\n    realm: pyml-test\n    path: ${file}\n`;
  }
  if (options.token) {
    const t = options.token;
    auth = `auth:\n  token:\n    realm: ${t.realm}\n    service: ${t.service}\n    issuer: ${t.issuer}\n    rootcertbundle: ${t.rootCertBundle}\n`;
  }
  const config = path.join(dir, 'config.yml');
  await writeFile(config, `version: 0.1
log:
  level: warn
  accesslog:
    disabled: false
storage:
  filesystem:
    rootdirectory: ${path.join(dir, 'storage')}
  delete:
    enabled: true
http:
  addr: 127.0.0.1:${port}
  secret: pyml-test-${port}
${auth}`);
  const child: ChildProcess = spawn('docker-registry', ['serve', config], { stdio: ['ignore', 'pipe', 'pipe'] });
  let log = '';
  let requests: LoggedRequest[] = [];
  const onData = (d: Buffer) => {
    log += d.toString();
    let newline;
    while ((newline = log.indexOf('\n')) >= 0) {
      const line = log.slice(0, newline);
      log = log.slice(newline + 1);
      // Apache combined format: 127.0.0.1 - - [date] "PUT /v2/… HTTP/1.1" 201 0 "" "agent"
      const match = /"([A-Z]+) (\S+) HTTP\/[\d.]+" (\d{3}) /.exec(line);
      if (match) requests.push({ method: match[1], path: match[2], status: Number(match[3]) });
      else recent.push(line);
    }
  };
  const recent: string[] = [];
  child.stdout!.on('data', onData);
  child.stderr!.on('data', onData);
  let exited = false;
  child.on('exit', () => (exited = true));
  const url = `http://127.0.0.1:${port}`;
  const deadline = Date.now() + 15_000;
  for (;;) {
    if (exited) throw new Error(`docker-registry exited at start: ${recent.slice(-5).join('\n')}`);
    const ok = await fetch(`${url}/v2/`).then((r) => r.status === 200 || r.status === 401, () => false);
    if (ok) break;
    if (Date.now() > deadline) {
      child.kill('SIGKILL');
      throw new Error(`docker-registry did not answer on ${url} within 15 s: ${recent.slice(-5).join('\n')}`);
    }
    await sleep(100);
  }
  requests = [];
  return {
    host: `127.0.0.1:${port}`, port, url, dir, pid: child.pid!,
    requests: () => [...requests],
    resetRequests: () => { requests = []; },
    stop: async () => {
      if (!exited) {
        const gone = new Promise((resolve) => child.once('exit', resolve));
        process.kill(child.pid!, 'SIGTERM');
        await Promise.race([gone, sleep(5000)]);
        if (!exited) process.kill(child.pid!, 'SIGKILL');
      }
      await rm(dir, { recursive: true, force: true });
    },
  };
}

/** Writes a Docker config dir with Basic credentials for `host`, for DOCKER_CONFIG. */
export async function dockerConfigWith(host: string, username: string, password: string): Promise<string> {
  const dir = await mkdtemp(path.join(tmpdir(), 'pyml-docker-config-'));
  const auth = Buffer.from(`${username}:${password}`).toString('base64');
  await writeFile(path.join(dir, 'config.json'), JSON.stringify({ auths: { [host]: { auth } } }));
  return dir;
}
