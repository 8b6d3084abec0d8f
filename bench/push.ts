/**
 * bench/push: push time of the iris image and of a ~200 MB-weights image to a local registry (Debian's
 * docker-registry on 127.0.0.1), cold and after a code-only change, side by side with `skopeo copy oci:… docker://…`
 * of the same layouts in the same run. Both go through their CLIs (process start-up included), each to its own
 * fresh registry so neither benefits from the other's blobs; the best of `--rounds` runs is kept.
 *
 *   npx tsx bench/push.ts [--mb 200] [--rounds 2]
 */
import { execFileSync, spawn } from 'node:child_process';
import { setTimeout as sleep } from 'node:timers/promises';
import { appendFile, cp, mkdir, rm, symlink } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { startRegistry, type RegistryServer } from '../test/helpers/registry-server.ts';
import { makeBigProject } from './big-project.ts';

const REPO = fileURLToPath(new URL('../', import.meta.url));
const WORK = path.join(REPO, 'bench/.work/push');
const PYML = path.join(REPO, 'packages/cli/bin/pyml.js');
const { values } = parseArgs({ options: { mb: { type: 'string', default: '200' }, rounds: { type: 'string', default: '2' } } });
const MB = Number(values.mb);
const ROUNDS = Number(values.rounds);

async function copyIris(dir: string): Promise<void> {
  await rm(dir, { recursive: true, force: true });
  await cp(path.join(REPO, 'examples/onnx-iris'), dir, { recursive: true, filter: (src) => !src.includes(`${path.sep}.pyml`) });
  await symlink(path.join(REPO, 'node_modules'), path.join(dir, 'node_modules'));
}

interface Layouts { name: string; cold: string; changed: string; totalBytes: number; changedBytes: number }

/** Builds the project, then again after a code-only edit: two layouts sharing every layer but the code's. */
async function buildPair(name: string, project: string, cache: string): Promise<Layouts> {
  const build = (out: string) => JSON.parse(execFileSync(process.execPath, [PYML, 'build', project, '--out', out, '--json'], {
    env: { ...process.env, PYML_CACHE_DIR: cache }, encoding: 'utf8', maxBuffer: 1 << 24,
  })) as { parts: { digest: string; size: number }[] };
  const cold = path.join(WORK, `${name}-cold`);
  const changed = path.join(WORK, `${name}-changed`);
  const a = build(cold);
  await appendFile(path.join(project, 'src/model.ts'), `\nexport const edited = ${Date.now()};\n`);
  const b = build(changed);
  const before = new Set(a.parts.map((p) => p.digest));
  return {
    name, cold, changed,
    totalBytes: a.parts.reduce((n, p) => n + p.size, 0),
    changedBytes: b.parts.filter((p) => !before.has(p.digest)).reduce((n, p) => n + p.size, 0),
  };
}

/** Runs a command without blocking the event loop (the registry's access log is read meanwhile); wall seconds. */
function run(cmd: string, args: string[], env: Record<string, string> = {}): Promise<{ seconds: number; stdout: string }> {
  const t = performance.now();
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, { env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'inherit'] });
    let stdout = '';
    child.stdout.on('data', (d) => (stdout += d));
    child.on('error', reject);
    child.on('close', (code) => (code === 0 ? resolve({ seconds: (performance.now() - t) / 1000, stdout }) : reject(new Error(`${cmd} ${args.join(' ')} exited ${code}`))));
  });
}

interface Timing { wall: number; inProcess?: number }

const pymlPush = (cache: string) => async (layout: string, ref: string): Promise<Timing> => {
  const r = await run(process.execPath, [PYML, 'push', layout, ref, '--json'], { PYML_CACHE_DIR: cache });
  return { wall: r.seconds, inProcess: (JSON.parse(r.stdout) as { seconds: number }).seconds };
};
const skopeoCopy = async (layout: string, ref: string): Promise<Timing> => {
  const r = await run('skopeo', ['copy', '--quiet', '--dest-tls-verify=false', `oci:${layout}:1.0.0`, `docker://${ref}`]);
  return { wall: r.seconds };
};

interface Measured { cold: Timing; changed: Timing; changedUploads: number }

/** Cold push then code-only push to a fresh registry; returns times and how many blobs the second one uploaded. */
async function measure(push: (layout: string, ref: string) => Promise<Timing>, pair: Layouts): Promise<Measured> {
  const registry: RegistryServer = await startRegistry();
  try {
    const ref = `${registry.host}/bench/${pair.name}:1.0.0`;
    const cold = await push(pair.cold, ref);
    await sleep(300); // let the access log of the cold push arrive before forgetting it
    registry.resetRequests();
    const changed = await push(pair.changed, ref);
    await sleep(300);
    const changedUploads = registry.requests().filter((q) => q.method === 'PUT' && q.path.includes('/blobs/uploads/')).length;
    return { cold, changed, changedUploads };
  } finally {
    await registry.stop();
  }
}

const best = (a: Timing | undefined, b: Timing): Timing => (!a || b.wall < a.wall ? b : a);
const ratio = (a: number, b: number) => `${(a / b).toFixed(2)}x`;
const mib = (n: number) => `${(n / 2 ** 20).toFixed(1)} MiB`;

async function main(): Promise<void> {
  await rm(WORK, { recursive: true, force: true });
  await mkdir(WORK, { recursive: true });
  const cache = path.join(WORK, 'cache');
  console.log(`building the iris image and a ${MB} MB-weights image (each twice: cold and code-only change) ...`);
  const irisProject = path.join(WORK, 'iris-project');
  await copyIris(irisProject);
  const bigProject = path.join(WORK, 'big-project');
  await makeBigProject(bigProject, MB);
  const pairs = [await buildPair('iris', irisProject, cache), await buildPair('big', bigProject, cache)];

  const rows: string[] = [];
  for (const pair of pairs) {
    let ours: Measured | undefined;
    let theirs: Measured | undefined;
    for (let round = 0; round < ROUNDS; round++) {
      // A fresh memo of pushed blobs each time, so pyml cannot mount from an earlier round's registry.
      const a = await measure(pymlPush(path.join(WORK, `push-cache-${pair.name}-${round}`)), pair);
      const b = await measure(skopeoCopy, pair);
      ours = { cold: best(ours?.cold, a.cold), changed: best(ours?.changed, a.changed), changedUploads: a.changedUploads };
      theirs = { cold: best(theirs?.cold, b.cold), changed: best(theirs?.changed, b.changed), changedUploads: b.changedUploads };
    }
    for (const kind of ['cold', 'changed'] as const) {
      const o = ours![kind];
      const t = theirs![kind];
      const bytes = kind === 'cold' ? pair.totalBytes : pair.changedBytes;
      rows.push(`${pair.name.padEnd(5)} ${(kind === 'cold' ? 'cold' : 'code-only').padEnd(10)} ${mib(bytes).padStart(10)}   ${o.wall.toFixed(2).padStart(6)} s  ${t.wall.toFixed(2).padStart(6)} s  ${ratio(o.wall, t.wall).padStart(6)}   ${o.inProcess!.toFixed(2).padStart(6)} s  ${ratio(o.inProcess!, t.wall).padStart(6)}`
        + (kind === 'changed' ? `   blob uploads: pyml ${ours!.changedUploads}, skopeo ${theirs!.changedUploads}` : ''));
    }
  }
  const skopeoVersion = execFileSync('skopeo', ['--version'], { encoding: 'utf8' }).trim();
  console.log(`\nbench/push  (local docker-registry on 127.0.0.1; best of ${ROUNDS}; ${skopeoVersion}; node ${process.version})`);
  console.log('              bytes to     pyml CLI  skopeo   pyml CLI   pyml push   push call');
  console.log('image kind      send       wall      wall     /skopeo    call only   /skopeo');
  for (const row of rows) console.log(row);
  console.log('(pyml CLI wall includes Node + tsx start-up; "push call" is the push itself, as reported by pyml push --json)');
}

await main();
