import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, readdirSync, readlinkSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { rayVenvBin } from './ray-env.ts';

/**
 * A real Ray cluster on this machine for a test or a bench: a head node and `workers` worker nodes, each started
 * with `ray start --block` in a process group of its own, every port Ray lets us choose at 0 (the kernel picks),
 * the dashboard off, few CPUs and a modest object store, and a temp dir of its own (short: Ray puts Unix sockets
 * there). stop() kills every process of the cluster by pid: the `ray start` groups, their descendants, and any
 * process writing its logs into the cluster's temp dir (Ray's workers start sessions of their own).
 */
export interface RayCluster {
  address: string;
  tempDir: string;
  /** Seconds from the first `ray start` to every node alive. */
  startupSeconds: number;
  /** pids of the processes of this cluster now (the Ray workers and actors among them). */
  pids(): number[];
  stop(): void;
}

const COMMON = (cpus: number, objectStoreBytes: number) => [
  `--num-cpus=${cpus}`, `--object-store-memory=${objectStoreBytes}`, '--disable-usage-stats', '--block',
  '--node-ip-address=127.0.0.1', '--node-manager-port=0', '--object-manager-port=0', '--min-worker-port=0', '--max-worker-port=0',
  '--dashboard-agent-listen-port=0', '--dashboard-agent-grpc-port=0', '--runtime-env-agent-port=0', '--metrics-export-port=0',
];

const live = new Set<RayCluster>();
// A test process that ends early (an assertion, a crash) still takes its cluster down.
process.once('exit', () => { for (const c of live) c.stop(); });

export async function startRayCluster(options: {
  workers: number; cpusPerNode?: number;
  /** CPUs the head offers to tasks and actors (default cpusPerNode; 0 keeps the work on the worker nodes). */
  headCpus?: number;
  objectStoreBytes?: number; timeoutMs?: number;
}): Promise<RayCluster> {
  const bin = rayVenvBin();
  const tempDir = mkdtempSync('/tmp/pyml-ray-');
  const cpus = options.cpusPerNode ?? 2;
  const store = options.objectStoreBytes ?? 150_000_000;
  const timeout = options.timeoutMs ?? 180_000;
  const starters: ChildProcess[] = [];
  const logs: { text: string }[] = [];
  const told = () => logs.map((l, i) => `--- ray start ${i === 0 ? 'head' : `worker ${i}`}:\n${l.text.trim().split('\n').slice(-8).join('\n')}`).join('\n');
  const env = { ...process.env, RAY_USAGE_STATS_ENABLED: '0' };
  const start = (args: string[]) => {
    const child = spawn(join(bin, 'ray'), ['start', ...args], { detached: true, stdio: ['ignore', 'pipe', 'pipe'], env });
    const log = { text: '' };
    child.stdout!.on('data', (c: Buffer) => { log.text = (log.text + c.toString()).slice(-8000); });
    child.stderr!.on('data', (c: Buffer) => { log.text = (log.text + c.toString()).slice(-8000); });
    logs.push(log);
    starters.push(child);
    return { child, log };
  };
  let stopped = false;
  const cluster: RayCluster = {
    address: '', tempDir, startupSeconds: 0,
    pids: () => clusterPids(starters, tempDir),
    stop() {
      if (stopped) return;
      stopped = true;
      live.delete(cluster);
      for (let round = 0; round < 5; round++) {
        const pids = clusterPids(starters, tempDir);
        if (!pids.length) break;
        for (const pid of pids) try { process.kill(pid, 'SIGKILL'); } catch { /* gone */ }
        sleepSync(200);
      }
      rmSync(tempDir, { recursive: true, force: true });
    },
  };
  live.add(cluster);
  const started = performance.now();
  try {
    start(['--head', '--port=0', '--include-dashboard=false', '--dashboard-port=0', `--temp-dir=${tempDir}`, ...COMMON(options.headCpus ?? cpus, store)]);
    const addressFile = join(tempDir, 'ray_current_cluster');
    cluster.address = await waitFor(() => readIfThere(addressFile)?.trim() || undefined, timeout, () => `the Ray head did not start:\n${told()}`);
    // One worker at a time, each tried up to 3 times: `ray start` gives a raylet 30 s (fixed in Ray) to register,
    // which a loaded machine with several raylets starting at once can miss.
    for (let i = 0; i < options.workers; i++) {
      for (let attempt = 1; ; attempt++) {
        const { child, log } = start([`--address=${cluster.address}`, `--temp-dir=${tempDir}`, ...COMMON(cpus, store)]);
        const up = await waitFor(() => (log.text.includes('Ray runtime started') ? true : child.exitCode !== null || child.signalCode !== null ? false : undefined), timeout,
          () => `Ray worker ${i + 1} did not start:\n${told()}`);
        if (up) break;
        if (attempt === 3) throw new Error(`Ray worker ${i + 1} failed to start 3 times:\n${told()}`);
      }
    }
    await waitForNodes(bin, cluster.address, 1 + options.workers, timeout).catch((error: Error) => {
      throw new Error(`${error.message}\n${told()}`);
    });
    cluster.startupSeconds = (performance.now() - started) / 1000;
    return cluster;
  } catch (error) {
    cluster.stop();
    throw error;
  }
}

/** Polls until `probe` gives a value. */
async function waitFor<T>(probe: () => T | undefined, timeoutMs: number, why: () => string): Promise<T> {
  const until = Date.now() + timeoutMs;
  for (;;) {
    const value = probe();
    if (value !== undefined) return value;
    if (Date.now() > until) throw new Error(why());
    await new Promise((r) => setTimeout(r, 250));
  }
}

/** Asks the cluster itself (a Ray driver) until `count` nodes are alive. */
function waitForNodes(bin: string, address: string, count: number, timeoutMs: number): Promise<void> {
  const code = `import ray, sys, time
ray.init(address=${JSON.stringify(address)}, logging_level="ERROR", log_to_driver=False)
deadline = time.time() + ${timeoutMs / 1000}
while True:
    alive = [n for n in ray.nodes() if n["Alive"]]
    if len(alive) >= ${count}: break
    if time.time() > deadline: sys.exit("only %d of ${count} Ray nodes came up" % len(alive))
    time.sleep(0.25)`;
  return new Promise((resolve, reject) => {
    const child = spawn(join(bin, 'python'), ['-c', code], { stdio: ['ignore', 'ignore', 'pipe'], env: { ...process.env, RAY_USAGE_STATS_ENABLED: '0' } });
    let stderr = '';
    child.stderr.on('data', (c: Buffer) => { stderr += c.toString(); });
    child.on('close', (status) => (status === 0 ? resolve() : reject(new Error(`the Ray cluster did not come up: ${stderr.trim().split('\n').slice(-5).join('\n')}`))));
  });
}

function readIfThere(file: string): string | undefined {
  try {
    return readFileSync(file, 'utf8');
  } catch {
    return undefined;
  }
}

/** The starters, their descendants, and any process whose stdout/stderr goes into the cluster's temp dir. */
function clusterPids(starters: ChildProcess[], tempDir: string): number[] {
  const parents = new Map<number, number>();
  const ours = new Set<number>();
  for (const name of readdirSync('/proc')) {
    const pid = Number(name);
    if (!Number.isInteger(pid)) continue;
    const stat = readIfThere(`/proc/${pid}/stat`);
    if (!stat) continue;
    // Fields after the command (which may hold spaces) in parentheses: state, ppid, ...
    const [state, ppid] = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    if (state === 'Z') continue; // a zombie holds nothing and cannot be killed
    parents.set(pid, Number(ppid));
    for (const fd of [1, 2]) {
      try {
        if (readlinkSync(`/proc/${pid}/fd/${fd}`).startsWith(`${tempDir}/`)) ours.add(pid);
      } catch { /* not ours to read, or gone */ }
    }
  }
  for (const s of starters) if (s.pid && parents.has(s.pid)) ours.add(s.pid);
  let grew = true;
  while (grew) {
    grew = false;
    for (const [pid, ppid] of parents) if (!ours.has(pid) && ours.has(ppid)) { ours.add(pid); grew = true; }
  }
  return [...ours];
}

function sleepSync(ms: number): void {
  Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, ms);
}
