/**
 * bench/cli: how fast the installed `pyml` answers, next to bare node measured in the same run.
 *
 *   npx tsx bench/cli/cli.ts [--runs 10]          installs pyml into a temp prefix (scripts/install-cli.sh --prefix)
 *   PYML_BIN=/usr/local/bin/pyml npx tsx bench/cli/cli.ts     times that pyml instead, installing nothing
 *
 * Rows, each run --runs times after one untimed warm-up run (the first run's time is shown apart: for predict it
 * includes unpacking the image into a fresh cache):
 *   node -e 0                     the floor: starting node and doing nothing
 *   pyml --version                the CLI's start-up (its bin, main and the version lookup)
 *   pyml --help                   the same plus the command list
 *   pyml inspect image IRIS       reading an image layout: manifest, config, pyml.json
 *   pyml predict IRIS --input …   a prediction with no server: the image's own node runs its entrypoint once
 * IRIS is examples/onnx-iris, copied outside the checkout and built by the pyml under test. Every child runs as a
 * user's would: without NODE_OPTIONS (the checkout's `source` condition), npm_* variables or node_modules/.bin on
 * PATH. Prints min and median wall time and the median's ratio to `node -e 0`'s.
 */
import { spawnSync } from 'node:child_process';
import { cp, mkdtemp, rm } from 'node:fs/promises';
import { loadavg, tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';

const REPO = fileURLToPath(new URL('../../', import.meta.url));
const { values } = parseArgs({ options: { runs: { type: 'string', default: '10' } } });
const RUNS = Number(values.runs);
if (!Number.isInteger(RUNS) || RUNS < 1) throw new Error(`--runs must be a positive integer, got '${values.runs}'`);

const work = await mkdtemp(path.join(tmpdir(), 'pyml-bench-cli-'));
process.on('exit', () => spawnSync('rm', ['-rf', work]));

/** The environment of a user's shell: this one without what the checkout or npm added. */
function userEnv(binDir?: string): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const [k, v] of Object.entries(process.env)) {
    if (k === 'NODE_OPTIONS' || k.startsWith('npm_') || k.startsWith('TSX_') || k === 'NODE_PATH') continue;
    env[k] = v;
  }
  const dirs = (process.env.PATH ?? '').split(path.delimiter).filter((d) => d && !d.includes('node_modules'));
  env.PATH = [...(binDir ? [binDir] : []), ...dirs].join(path.delimiter);
  env.PYML_CACHE_DIR = path.join(work, 'cache');
  env.NO_COLOR = '1';
  return env;
}

function runOrFail(cmd: string, args: string[], env: NodeJS.ProcessEnv, cwd = work): string {
  const r = spawnSync(cmd, args, { cwd, env, encoding: 'utf8', maxBuffer: 64 << 20 });
  if (r.status !== 0) throw new Error(`${cmd} ${args.join(' ')} exited ${r.status ?? r.signal}:\n${(r.stderr ?? '').slice(-3000)}`);
  return r.stdout;
}

let pyml = process.env.PYML_BIN;
if (pyml) {
  console.error(`bench/cli: timing PYML_BIN=${pyml}`);
} else {
  const prefix = path.join(work, 'prefix');
  console.error(`bench/cli: installing pyml into ${prefix} (scripts/install-cli.sh; about a minute)`);
  runOrFail('bash', [path.join(REPO, 'scripts/install-cli.sh'), '--prefix', prefix, '--out', path.join(work, 'packages')], userEnv(), REPO);
  pyml = path.join(prefix, 'bin', 'pyml');
}
const env = userEnv(path.dirname(pyml));

// iris, copied out of the checkout (so its @pyml/* imports resolve to the pyml under test, not the workspace's).
const iris = path.join(work, 'onnx-iris');
await cp(path.join(REPO, 'examples/onnx-iris'), iris, { recursive: true, filter: (src) => !/[/\\](\.pyml|node_modules)$/.test(src) });
const image = path.join(work, 'iris-image');
runOrFail(pyml, ['build', iris, '--out', image, '--json'], env);

/** Wall time of one run, in ms; the command must succeed. */
function time(cmd: string, args: string[]): number {
  const start = process.hrtime.bigint();
  const r = spawnSync(cmd, args, { cwd: work, env, stdio: ['ignore', 'ignore', 'pipe'], encoding: 'utf8' });
  const ms = Number(process.hrtime.bigint() - start) / 1e6;
  if (r.status !== 0) throw new Error(`${cmd} ${args.join(' ')} exited ${r.status ?? r.signal}: ${r.stderr.slice(-2000)}`);
  return ms;
}

const rows: { name: string; cmd: string; args: string[] }[] = [
  { name: 'node -e 0', cmd: process.execPath, args: ['-e', '0'] },
  { name: 'pyml --version', cmd: pyml, args: ['--version'] },
  { name: 'pyml --help', cmd: pyml, args: ['--help'] },
  { name: 'pyml inspect image iris', cmd: pyml, args: ['inspect', 'image', image] },
  { name: 'pyml predict iris', cmd: pyml, args: ['predict', image, '--input', path.join(iris, 'sample.json')] },
];

const load = () => loadavg().map((l) => l.toFixed(2)).join(' ');
const loadBefore = load();
const first = new Map<string, number>();
const times = new Map<string, number[]>(rows.map((r) => [r.name, []]));
for (const r of rows) first.set(r.name, time(r.cmd, r.args));
// Interleaved, so a busy moment of the machine does not land on one row only.
for (let i = 0; i < RUNS; i++) for (const r of rows) times.get(r.name)!.push(time(r.cmd, r.args));

const median = (xs: number[]) => { const s = [...xs].sort((a, b) => a - b); return s.length % 2 ? s[(s.length - 1) / 2]! : (s[s.length / 2 - 1]! + s[s.length / 2]!) / 2; };
const floor = median(times.get('node -e 0')!);
const version = runOrFail(pyml, ['--version'], env).trim();
console.log(`${version}; ${RUNS} runs each after one warm-up; load ${loadBefore} before, ${load()} after`);
console.log(`${'command'.padEnd(26)} ${'first'.padStart(9)} ${'min'.padStart(9)} ${'median'.padStart(9)} ${'x node -e 0'.padStart(12)}`);
for (const r of rows) {
  const t = times.get(r.name)!;
  const m = median(t);
  console.log(`${r.name.padEnd(26)} ${`${first.get(r.name)!.toFixed(0)} ms`.padStart(9)} ${`${Math.min(...t).toFixed(0)} ms`.padStart(9)} ${`${m.toFixed(0)} ms`.padStart(9)} ${`x${(m / floor).toFixed(2)}`.padStart(12)}`);
}
await rm(work, { recursive: true, force: true });
