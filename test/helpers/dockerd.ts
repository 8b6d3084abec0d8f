import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { request } from 'node:http';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { requireTool } from './tools.ts';

export interface DockerEngine {
  /** `unix:///tmp/…/docker.sock`: set as DOCKER_HOST for the docker CLI, dockerode and pyml. */
  host: string;
  socket: string;
  dir: string;
  pid: number;
  /** Environment for child processes that should talk to this engine. */
  env: Record<string, string>;
  stop(): Promise<void>;
}

/**
 * Starts a private Docker engine (Debian's docker.io) with its own data, exec root and socket in a temp dir, no
 * iptables and no bridge: containers run with `--network none`. Stopped by pid (it stops its containerd).
 * Needs root, as dockerd does.
 */
export async function startDockerd(): Promise<DockerEngine> {
  requireTool('dockerd', 'docker.io');
  requireTool('docker', 'docker.io');
  if (process.getuid?.() !== 0) throw new Error('the engine tests start dockerd, which needs root');
  // Short path: a Unix socket path must fit in 108 bytes.
  const dir = await mkdtemp('/tmp/pyml-dockerd-');
  const socket = path.join(dir, 'docker.sock');
  const pidfile = path.join(dir, 'dockerd.pid');
  const child: ChildProcess = spawn('dockerd', [
    '--iptables=false', '--ip6tables=false', '--bridge=none',
    '--host', `unix://${socket}`, '--data-root', path.join(dir, 'data'), '--exec-root', path.join(dir, 'exec'),
    '--pidfile', pidfile,
  ], { stdio: ['ignore', 'pipe', 'pipe'] });
  let log = '';
  const keep = (d: Buffer) => { log = (log + d.toString()).slice(-8000); };
  child.stdout!.on('data', keep);
  child.stderr!.on('data', keep);
  let exited = false;
  child.on('exit', () => (exited = true));
  const pid = child.pid!;

  const stop = async () => {
    if (!exited) {
      const gone = new Promise((resolve) => child.once('exit', resolve));
      process.kill(pid, 'SIGTERM');
      await Promise.race([gone, sleep(20_000)]);
      if (!exited) {
        process.kill(pid, 'SIGKILL');
        await Promise.race([gone, sleep(5000)]);
      }
    }
    // overlay mounts are gone once dockerd has stopped; anything still busy is left for the OS to reap.
    await rm(dir, { recursive: true, force: true }).catch(() => {});
  };

  const deadline = Date.now() + 60_000;
  while (!(await ping(socket))) {
    if (exited) {
      await rm(dir, { recursive: true, force: true }).catch(() => {});
      throw new Error(`dockerd exited at start:\n${log.split('\n').slice(-8).join('\n')}`);
    }
    if (Date.now() > deadline) {
      await stop();
      throw new Error(`dockerd did not answer on ${socket} within 60 s:\n${log.split('\n').slice(-8).join('\n')}`);
    }
    await sleep(200);
  }
  const written = Number((await readFile(pidfile, 'utf8').catch(() => '')).trim());
  if (written && written !== pid) throw new Error(`dockerd wrote pid ${written} but we started ${pid}`);
  const host = `unix://${socket}`;
  return { host, socket, dir, pid, env: { DOCKER_HOST: host }, stop };
}

function ping(socket: string): Promise<boolean> {
  return new Promise((resolve) => {
    const req = request({ socketPath: socket, path: '/_ping', method: 'GET', timeout: 2000 }, (res) => {
      res.resume();
      resolve(res.statusCode === 200);
    });
    req.on('error', () => resolve(false));
    req.on('timeout', () => { req.destroy(); resolve(false); });
    req.end();
  });
}
