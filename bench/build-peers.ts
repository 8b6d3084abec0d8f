/**
 * bench/build-peers: `pyml build` against `docker build` of the same image, in one run, on a private Docker engine
 * (Debian's docker.io 20.10, classic builder) that this bench starts and stops itself.
 *
 *   npx tsx bench/build-peers.ts [--rounds 3] [--mb 200] [--only iris|MB] [--no-dist | --no-compile]
 *
 * Docker gets a head start: its context is the parts pyml built, ready to copy (`FROM scratch` and one `COPY` per
 * part: base, deps, weights, model, entrypoint), so it bundles nothing and checks nothing. Three cases, each timed
 * end to end as a user runs it (CLI start-up included), in interleaved rounds (docker and pyml alternate who goes
 * first), for examples/onnx-iris and for a model with --mb MB of random weights:
 *   empty cache        nothing cached on either side (pyml: a new cache dir; docker: system prune -af)
 *   code-only change   one line of model code changed, everything else cached
 *   new project        another project on a machine that already built one: pyml's base and runtime cached,
 *                      docker's build cache holding the previous project's layers
 * Each is reported as wall clock and as CPU seconds (pyml: its processes; docker: the CLI plus the engine's dockerd
 * and containerd), since on a shared machine wall clock says as much about the neighbours as about the build.
 * pyml runs twice per case where it can: from this checkout (TypeScript through tsx) and compiled (dist/, as the
 * installed CLI runs; compiled first with `npm run build`, unless --no-compile (dist/ as it is) or --no-dist).
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import { appendFile, cp, mkdir, readFile, readdir, rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { startDockerd, type DockerEngine } from '../test/helpers/dockerd.ts';
import { makeBigProject } from './big-project.ts';

const REPO = fileURLToPath(new URL('../', import.meta.url));
const WORK = path.join(REPO, 'bench/.work/build-peers');
const { values } = parseArgs({
  options: {
    rounds: { type: 'string', default: '3' }, mb: { type: 'string', default: '200' }, only: { type: 'string' },
    'no-dist': { type: 'boolean', default: false }, 'no-compile': { type: 'boolean', default: false },
  },
});
const ROUNDS = Number(values.rounds);
const MB = Number(values.mb);

type Case = 'empty cache' | 'code-only change' | 'new project';
const CASES: Case[] = ['empty cache', 'code-only change', 'new project'];
type Builder = 'docker' | 'pyml (tsx)' | 'pyml (dist)';

interface Subject {
  label: string;
  /** Makes project number `n` (a fresh directory; n > 0 is "another project": new weights where that is cheap). */
  make(dir: string, n: number): Promise<void>;
}

const SUBJECTS: Subject[] = [
  {
    label: 'onnx-iris',
    async make(dir, n) {
      await rm(dir, { recursive: true, force: true });
      await cp(path.join(REPO, 'examples/onnx-iris'), dir, { recursive: true, filter: (src) => !src.includes('/.pyml') });
      const config = path.join(dir, 'pyml.config.ts');
      await writeFile(config, (await readFile(config, 'utf8')).replace("name: 'iris'", `name: 'iris${n}'`));
    },
  },
  {
    label: `${MB} MB weights`,
    async make(dir, n) {
      await makeBigProject(dir, MB, n + 1);
    },
  },
];

/** Wall clock and CPU seconds of one build. */
interface Timing { wall: number; cpu: number }

const CPU_FILE = path.join(WORK, 'cpu.txt');

/**
 * Wall clock for a command, which must succeed, and the CPU it and the children it waited for used (GNU time):
 * on a machine shared with other work, CPU seconds say what a build costs when wall clock mostly says how busy
 * the machine was.
 */
function timed(command: string, args: string[], env: NodeJS.ProcessEnv = process.env): Timing {
  const t = performance.now();
  const r = spawnSync('/usr/bin/time', ['-f', '%U %S', '-o', CPU_FILE, command, ...args], { env, encoding: 'utf8', maxBuffer: 1 << 26, cwd: REPO });
  const wall = (performance.now() - t) / 1000;
  if (r.status !== 0) throw new Error(`${command} ${args.join(' ')} failed (${r.status}):\n${r.stderr}\n${r.stdout}`);
  const [user, system] = readFileSync(CPU_FILE, 'utf8').trim().split('\n').pop()!.split(' ').map(Number);
  return { wall, cpu: user! + system! };
}

const TICKS_PER_SECOND = Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim());

/** CPU seconds used so far by a process and its descendants still running (dockerd, its containerd): /proc stat. */
function treeCpu(root: number): number {
  const stats = new Map<number, { ppid: number; ticks: number }>();
  for (const name of readdirSync('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    let text: string;
    try { text = readFileSync(`/proc/${name}/stat`, 'utf8'); } catch { continue; }
    // Fields after the command name (which may hold spaces) start at its closing parenthesis.
    const f = text.slice(text.lastIndexOf(')') + 2).split(' ');
    stats.set(Number(name), { ppid: Number(f[1]), ticks: Number(f[11]) + Number(f[12]) });
  }
  let ticks = 0;
  const visit = (pid: number) => {
    ticks += stats.get(pid)?.ticks ?? 0;
    for (const [child, s] of stats) if (s.ppid === pid) visit(child);
  };
  visit(root);
  return ticks / TICKS_PER_SECOND;
}

const PYML_TSX = path.join(REPO, 'packages/cli/bin/pyml.js');
const DIST_RUNNER = path.join(WORK, 'pyml-dist.mjs');

/** One `pyml build` as a user types it: a new node process; tsx from the checkout, or compiled dist/. */
function pymlBuild(builder: Builder, project: string, cache: string, out: string): Timing {
  const env: NodeJS.ProcessEnv = { ...process.env, PYML_CACHE_DIR: cache, PYML_PROGRESS: 'quiet' };
  // The checkout's .npmrc gives npm's children --conditions=source; the compiled CLI must resolve dist/.
  if (builder === 'pyml (dist)') delete env.NODE_OPTIONS;
  const entry = builder === 'pyml (dist)' ? DIST_RUNNER : PYML_TSX;
  return timed(process.execPath, [entry, 'build', project, '--out', out, '--json'], env);
}

/** The docker context from a built layout: each part's layer unpacked into its own directory, one COPY per part. */
async function dockerContext(layout: string, context: string): Promise<void> {
  await rm(context, { recursive: true, force: true });
  await mkdir(context, { recursive: true });
  const index = JSON.parse(await readFile(path.join(layout, 'index.json'), 'utf8')) as { manifests: { digest: string }[] };
  const blob = (digest: string) => path.join(layout, 'blobs/sha256', digest.slice('sha256:'.length));
  const manifest = JSON.parse(await readFile(blob(index.manifests[0]!.digest), 'utf8')) as { layers: { digest: string; mediaType: string; annotations?: Record<string, string> }[] };
  const lines = ['FROM scratch'];
  for (const [i, layer] of manifest.layers.entries()) {
    const part = `${i}-${layer.annotations?.['dev.pyml.part'] ?? 'layer'}`;
    await mkdir(path.join(context, part));
    execFileSync('tar', ['-x', ...(layer.mediaType.endsWith('gzip') ? ['-z'] : []), '-f', blob(layer.digest), '-C', path.join(context, part)]);
    lines.push(`COPY ${part}/ /`);
  }
  await writeFile(path.join(context, 'Dockerfile'), lines.join('\n') + '\n');
}

/** The one-line model change, in the docker context: the bundled model file gains a line, as pyml's bundle does. */
async function editContextModel(context: string, stamp: string): Promise<void> {
  const modelPart = (await readdir(context)).find((d) => d.endsWith('-model'))!;
  const modelDir = path.join(context, modelPart);
  const file = (await findFiles(modelDir)).find((f) => f.endsWith('model.mjs'))!;
  await appendFile(file, `export const ${editName(stamp)} = ${JSON.stringify(stamp)};\n`);
}

/** A name no earlier edit of the same file used (each edit adds one export). */
function editName(stamp: string): string {
  return `edited_${stamp.replace(/\W/g, '_')}`;
}

async function findFiles(dir: string): Promise<string[]> {
  const out: string[] = [];
  for (const e of await readdir(dir, { withFileTypes: true })) {
    const p = path.join(dir, e.name);
    if (e.isDirectory()) out.push(...await findFiles(p));
    else out.push(p);
  }
  return out;
}

/** The docker CLI's own CPU plus what the engine (dockerd and its containerd) spent meanwhile. */
function dockerBuild(engine: DockerEngine, context: string, tag: string): Timing {
  const before = treeCpu(engine.pid);
  // DOCKER_BUILDKIT=0: the classic builder, which the 20.10 engine runs without buildx.
  const t = timed('docker', ['build', '-q', '-t', tag, context], { ...process.env, ...engine.env, DOCKER_BUILDKIT: '0' });
  return { wall: t.wall, cpu: t.cpu + treeCpu(engine.pid) - before };
}

function dockerForgetAll(engine: DockerEngine): void {
  execFileSync('docker', ['system', 'prune', '-af'], { env: { ...process.env, ...engine.env }, stdio: 'ignore' });
}

function median(xs: number[]): number {
  const sorted = [...xs].sort((a, b) => a - b);
  const mid = Math.floor(sorted.length / 2);
  return sorted.length % 2 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2;
}

async function main(): Promise<void> {
  await mkdir(WORK, { recursive: true });
  // Printed with the figures: on a shared 2-core machine the load decides the wall clock more than the build does.
  const loadAtStart = readFileSync('/proc/loadavg', 'utf8').split(' ').slice(0, 3).join(' ');
  const builders: Builder[] = ['docker', 'pyml (tsx)'];
  if (!values['no-dist']) {
    if (!values['no-compile']) {
      console.log('compiling dist/ (npm run build) for the installed-style runs ...');
      execFileSync('npm', ['run', 'build', '--silent'], { cwd: REPO, stdio: 'inherit' });
    }
    await writeFile(DIST_RUNNER, `const { main } = await import(${JSON.stringify(path.join(REPO, 'packages/cli/dist/main.js'))});\nprocess.exitCode = await main(process.argv.slice(2));\n`);
    builders.push('pyml (dist)');
  }
  const subjects = SUBJECTS.filter((s) => !values.only || s.label.includes(values.only));
  const engine = await startDockerd();
  const results = new Map<string, Timing[]>();
  const record = (subject: string, c: Case, b: Builder, s: Timing) => {
    const key = `${subject}|${c}|${b}`;
    results.set(key, [...(results.get(key) ?? []), s]);
  };
  try {
    let projectNumber = 0;
    for (let round = 0; round < ROUNDS; round++) {
      for (const subject of subjects) {
        const dir = path.join(WORK, subject.label.replace(/\W+/g, '-'));
        // Alternate who goes first, so neither side always finds the page cache warmed by the other.
        const order = round % 2 === 0 ? builders : [...builders].reverse();
        // The project all three cases start from, and the docker context of the parts pyml built for it.
        const project = path.join(dir, 'project');
        await subject.make(project, projectNumber++);
        const seedCache = path.join(dir, 'seed-cache');
        await rm(seedCache, { recursive: true, force: true });
        pymlBuild('pyml (tsx)', project, seedCache, path.join(dir, 'seed-out'));
        const context = path.join(dir, 'context');
        await dockerContext(path.join(dir, 'seed-out'), context);

        // Empty cache: both sides from nothing.
        for (const b of order) {
          if (b === 'docker') {
            dockerForgetAll(engine);
            record(subject.label, 'empty cache', b, dockerBuild(engine, context, 'peer:cold'));
          } else {
            const cache = path.join(dir, `cache-${b === 'pyml (dist)' ? 'dist' : 'tsx'}`);
            await rm(cache, { recursive: true, force: true });
            record(subject.label, 'empty cache', b, pymlBuild(b, project, cache, path.join(dir, `out-${b.slice(6, -1)}`)));
          }
        }

        // Code-only change: one line of model code, everything else as the previous build left it.
        for (const b of order) {
          const stamp = `${round}-${b}-${Date.now()}`;
          if (b === 'docker') {
            await editContextModel(context, stamp);
            record(subject.label, 'code-only change', b, dockerBuild(engine, context, 'peer:cold'));
          } else {
            await appendFile(path.join(project, 'src/model.ts'), `export const ${editName(stamp)} = ${JSON.stringify(stamp)};\n`);
            const cache = path.join(dir, `cache-${b === 'pyml (dist)' ? 'dist' : 'tsx'}`);
            record(subject.label, 'code-only change', b, pymlBuild(b, project, cache, path.join(dir, `out-${b.slice(6, -1)}`)));
          }
        }

        // A new project on a machine that already built one: its own weights and code, the same base and runtime.
        const next = path.join(dir, 'next-project');
        await subject.make(next, projectNumber++);
        const nextSeed = path.join(dir, 'next-seed-cache');
        await rm(nextSeed, { recursive: true, force: true });
        pymlBuild('pyml (tsx)', next, nextSeed, path.join(dir, 'next-seed-out'));
        const nextContext = path.join(dir, 'next-context');
        await dockerContext(path.join(dir, 'next-seed-out'), nextContext);
        await rm(nextSeed, { recursive: true, force: true });
        for (const b of order) {
          if (b === 'docker') {
            record(subject.label, 'new project', b, dockerBuild(engine, nextContext, 'peer:next'));
          } else {
            const cache = path.join(dir, `cache-${b === 'pyml (dist)' ? 'dist' : 'tsx'}`);
            record(subject.label, 'new project', b, pymlBuild(b, next, cache, path.join(dir, `next-out-${b.slice(6, -1)}`)));
          }
        }
        console.log(`round ${round + 1}/${ROUNDS} ${subject.label} (wall/cpu s): ${CASES.map((c) => `${c}: ${builders.map((b) => { const t = results.get(`${subject.label}|${c}|${b}`)!.at(-1)!; return `${b} ${t.wall.toFixed(2)}/${t.cpu.toFixed(2)}`; }).join(', ')}`).join(' | ')}`);
      }
    }
  } finally {
    await engine.stop();
  }

  const nproc = execFileSync('nproc', { encoding: 'utf8' }).trim();
  const load = readFileSync('/proc/loadavg', 'utf8').split(' ').slice(0, 3).join(' ');
  const dockerd = execFileSync('dockerd', ['--version'], { encoding: 'utf8' }).trim();
  console.log(`\nbench/build-peers: ${ROUNDS} interleaved rounds; median (min-max) of each; wall clock incl. start-up, and CPU seconds (docker: CLI + engine); ${nproc} cores (load average at the start ${loadAtStart}, at the end ${load}), node ${process.version}, ${dockerd}, classic builder\n`);
  const pymls = builders.filter((b) => b !== 'docker');
  for (const metric of ['wall', 'cpu'] as const) {
    console.log(`${metric === 'wall' ? 'wall clock' : 'CPU'}, seconds`);
    console.log(`| model | case | docker build | ${pymls.map((b) => `${b} | ratio`).join(' | ')} |`);
    console.log(`| --- | --- | --- | ${pymls.map(() => '--- | ---').join(' | ')} |`);
    for (const subject of subjects) {
      for (const c of CASES) {
        const xs = (b: Builder) => results.get(`${subject.label}|${c}|${b}`)!.map((t) => t[metric]);
        const cell = (b: Builder) => `${median(xs(b)).toFixed(2)} (${Math.min(...xs(b)).toFixed(2)}-${Math.max(...xs(b)).toFixed(2)})`;
        const docker = median(xs('docker'));
        console.log(`| ${subject.label} | ${c} | ${cell('docker')} | ${pymls.map((b) => `${cell(b)} | ${(median(xs(b)) / docker).toFixed(2)}x`).join(' | ')} |`);
      }
    }
    console.log('');
  }
  console.log('aims: code-only change <= 0.3x, empty cache <= 1.0x, new project <= 0.5x of docker build');
}

await main();
