/**
 * pyml as a user has it: installed from its packed tarballs into a fresh prefix (scripts/install-cli.sh, once per
 * run), first on PATH, used on projects in a temp directory outside the checkout, with no node_modules linked to
 * the checkout's and no TypeScript loader: the children get no NODE_OPTIONS (the checkout's `source` condition),
 * no npm_* variables (the checkout's npm config) and no node_modules/.bin on PATH.
 *
 * For each framework: init → build → predict → serve with one REST call (the four flows run at once; pytorch's
 * Python layer is the long one). Then a third-party plugin made by `pyml plugin init` and used by projects by
 * path and installed with npm, and a JSON config naming a built-in plugin by its short name.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { spawn } from 'node:child_process';
import { existsSync, lstatSync, readFileSync, realpathSync } from 'node:fs';
import { copyFile, mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { REPO } from '../helpers/cli.ts';

const CLI_VERSION = (JSON.parse(readFileSync(path.join(REPO, 'packages/cli/package.json'), 'utf8')) as { version: string }).version;

let work: string; // everything this file writes: the prefix, the tarballs, the projects
let prefix: string;
let projects: string;

interface Run { code: number; stdout: string; stderr: string }

/**
 * The environment a user's shell would give pyml: this one without what the checkout's test run added.
 * PYML_CACHE_DIR is the run's shared cache when there is one (scripts/test.sh sets PYML_TEST_CACHE), so base and
 * Python layers another area compressed are reused, as they would be on a user's machine.
 */
function userEnv(): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const [k, v] of Object.entries(process.env)) {
    if (k === 'NODE_OPTIONS' || k.startsWith('npm_') || k.startsWith('TSX_') || k === 'NODE_PATH' || k === 'INIT_CWD') continue;
    env[k] = v;
  }
  const pathDirs = (process.env.PATH ?? '').split(path.delimiter).filter((d) => d && !d.includes('node_modules') && !d.startsWith(REPO));
  env.PATH = [path.join(prefix, 'bin'), ...pathDirs].join(path.delimiter);
  env.PYML_CACHE_DIR = process.env.PYML_TEST_CACHE ?? path.join(work, 'cache');
  env.NO_COLOR = '1';
  return env;
}

/** Runs a command as the user would (user env, cwd outside the checkout); resolves with its exit code and output. */
function run(cmd: string, args: string[], opts: { cwd?: string; env?: NodeJS.ProcessEnv; timeoutMs?: number } = {}): Promise<Run> {
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, { cwd: opts.cwd ?? projects, env: opts.env ?? userEnv(), stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d) => (stdout += d));
    child.stderr.on('data', (d) => (stderr += d));
    const timer = setTimeout(() => child.kill('SIGKILL'), opts.timeoutMs ?? 300_000);
    child.on('error', (error) => { clearTimeout(timer); reject(new Error(`${cmd} ${args.join(' ')}: cannot start: ${error.message}`)); });
    child.on('close', (code, signal) => { clearTimeout(timer); resolve({ code: code ?? (signal ? 128 : -1), stdout, stderr }); });
  });
}

/** `pyml ARGS` from PATH; fails naming the command and showing its stderr unless it exits 0. */
async function pyml(args: string[], opts: { cwd?: string } = {}): Promise<Run> {
  const r = await run('pyml', args, opts);
  if (r.code !== 0) throw new Error(`pyml ${args.join(' ')} exited ${r.code} (cwd ${opts.cwd ?? projects}):\n${r.stderr.slice(-3000)}\n${r.stdout.slice(-1000)}`);
  return r;
}

async function pymlJson<T>(args: string[], opts: { cwd?: string } = {}): Promise<T> {
  const r = await pyml([...args, '--json'], opts);
  try {
    return JSON.parse(r.stdout) as T;
  } catch {
    throw new Error(`pyml ${args.join(' ')} --json printed no JSON: ${r.stdout.slice(0, 500)}\n${r.stderr.slice(-1000)}`);
  }
}

interface OutputTensor { name: string; datatype: string; shape: number[]; data: unknown[] }
interface Response { model_name: string; outputs: OutputTensor[] }

/** Output names with their datatypes and shapes, sorted by name: what a framework's starter must answer. */
const outline = (r: Response) => r.outputs.map((o) => `${o.name} ${o.datatype} [${o.shape.join(',')}]`).sort();

/**
 * `pyml serve IMAGE` on free ports; one `POST /v2/models/NAME/infer` of `request`; then SIGTERM to the pid the
 * ready line names (the serve process: its models are its children and stop with it).
 */
async function serveOnce(image: string, name: string, request: unknown): Promise<Response> {
  const child = spawn('pyml', ['serve', image, '--grpc', '127.0.0.1:0', '--http', '127.0.0.1:0', '--json'], { cwd: projects, env: userEnv(), stdio: ['ignore', 'pipe', 'pipe'] });
  let stderr = '';
  child.stderr.on('data', (d) => (stderr += d));
  const exited = new Promise<number | null>((r) => child.on('exit', (code) => r(code)));
  try {
    const ready = await new Promise<{ pid: number; http: string }>((resolve, reject) => {
      let out = '';
      const timer = setTimeout(() => reject(new Error(`pyml serve ${image}: no ready line in 60 s:\n${stderr.slice(-2000)}`)), 60_000);
      child.stdout.on('data', (d) => {
        out += d;
        const nl = out.indexOf('\n');
        if (nl < 0) return;
        clearTimeout(timer);
        try { resolve(JSON.parse(out.slice(0, nl)) as { pid: number; http: string }); } catch { reject(new Error(`pyml serve: the first line is not the JSON ready line: ${out}`)); }
      });
      void exited.then((code) => { clearTimeout(timer); reject(new Error(`pyml serve ${image} exited ${code} before ready:\n${stderr.slice(-3000)}`)); });
    });
    assert.is(ready.pid, child.pid, 'the ready line names the serve process');
    assert.match(ready.http, /^127\.0\.0\.1:\d+$/, `ready.http: ${ready.http}`);
    // The first call starts the model on demand (pytorch's sidecar takes seconds).
    const res = await fetch(`http://${ready.http}/v2/models/${name}/infer`, {
      method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(request), signal: AbortSignal.timeout(120_000),
    });
    const text = await res.text();
    assert.is(res.status, 200, `POST /v2/models/${name}/infer: HTTP ${res.status}: ${text.slice(0, 500)}\n${stderr.slice(-2000)}`);
    return JSON.parse(text) as Response;
  } finally {
    child.kill('SIGTERM');
    const stopped = await Promise.race([exited, new Promise((r) => setTimeout(() => r('timeout'), 15_000))]);
    if (stopped === 'timeout') {
      child.kill('SIGKILL');
      throw new Error(`pyml serve ${image} (pid ${child.pid}) did not stop within 15 s of SIGTERM`);
    }
  }
}

/** Builds a project, predicts its sample.json, checks the outputs' outline; returns the image and the response. */
async function buildAndPredict(dir: string, expected: string[]): Promise<{ image: string; response: Response; name: string }> {
  const image = path.join(dir, '.pyml', 'image');
  const built = await pymlJson<{ ok: boolean; name: string }>(['build', dir, '--out', image]);
  assert.is(built.ok, true, `${dir}: build ok`);
  const response = await pymlJson<Response>(['predict', image, '--input', path.join(dir, 'sample.json')]);
  assert.equal(outline(response), expected, `${path.basename(dir)}: pyml predict's outputs`);
  return { image, response, name: response.model_name };
}

// What each framework's starter answers for its sample.json (two rows).
const FRAMEWORKS: Record<string, string[]> = {
  onnx: ['label INT64 [2]', 'probabilities FP32 [2,2]'],
  tfjs: ['probabilities FP32 [2,2]'],
  sklearn: ['label BYTES [2]', 'probability_no FP64 [2]', 'probability_yes FP64 [2]'],
  pytorch: ['probabilities FP32 [2,2]'],
};

/** init → build → predict → serve (one REST call) for one framework, in a project directory of its own. */
async function frameworkFlow(framework: string): Promise<void> {
  const name = `${framework}-starter`;
  const dir = path.join(projects, name);
  const steps: string[] = [];
  let t = Date.now();
  const step = (what: string) => { steps.push(`${what} ${((Date.now() - t) / 1000).toFixed(1)} s`); t = Date.now(); };
  const init = await pyml(['init', name, '--framework', framework]);
  step('init');
  assert.match(init.stdout, new RegExp(`next:\\n  cd ${name}\\n`), `${framework}: the next steps start with cd`);
  assert.not.match(init.stdout, /npm install|npx|tsx/, `${framework}: next steps that need no registry`);
  assert.not.ok(existsSync(path.join(dir, 'make-model.ts')), `${framework}: no make-model.ts`);
  const { image, response } = await buildAndPredict(dir, FRAMEWORKS[framework]!);
  step('build + predict');
  const request = JSON.parse(await readFile(path.join(dir, 'sample.json'), 'utf8')) as unknown;
  const served = await serveOnce(image, name, request);
  step('serve');
  assert.is(served.model_name, name);
  assert.equal(outline(served), outline(response), `${framework}: pyml serve answers as pyml predict did`);
  for (const o of served.outputs) {
    const p = response.outputs.find((x) => x.name === o.name)!;
    o.data.forEach((v, i) => assert.ok(typeof v === 'number' ? Math.abs(v - (p.data[i] as number)) < 1e-5 : v === p.data[i], `${framework}: ${o.name}[${i}] served ${String(v)}, predicted ${String(p.data[i])}`));
  }
  if (framework === 'sklearn') {
    await batchOnce(image, dir);
    step('batch');
  }
  process.stderr.write(`  ${framework}: ${steps.join(', ')}\n`);
}

/**
 * pyml batch of the sklearn starter (a dataframe model) over its sample.json's rows as a CSV, into a DuckDB table:
 * the installed pyml's DuckDB and Arrow, and one copy of Arrow among its packages (with one each, batches of
 * another copy's classes were never written and batch waited forever).
 */
async function batchOnce(image: string, dir: string): Promise<void> {
  const sample = JSON.parse(readFileSync(path.join(dir, 'sample.json'), 'utf8')) as { inputs: { name: string; data: number[] }[] };
  const col = (n: string) => sample.inputs.find((i) => i.name === n)!.data;
  const [x0, x1, x2] = [col('x0'), col('x1'), col('x2')];
  await writeFile(path.join(dir, 'rows.csv'), `id,x0,x1,x2\n${x0.map((_, i) => `${i},${x0[i]},${x1[i]},${x2[i]}`).join('\n')}\n`);
  const db = path.join(dir, 'predictions.duckdb');
  const out = await pymlJson<{ ok: boolean; rows: number; output: string }>(['batch', image, '--into', 'preds', '--db', db, '--keep', 'id', '--query',
    `SELECT id, x0::DOUBLE AS x0, x1::DOUBLE AS x1, x2::DOUBLE AS x2 FROM read_csv('${path.join(dir, 'rows.csv')}') ORDER BY id`]);
  assert.is(out.ok, true);
  assert.is(out.rows, x0.length, 'pyml batch: one prediction per row');
  assert.is(out.output, `${db}#preds`);
  assert.ok(existsSync(db), `pyml batch wrote ${db}`);
}

const flows = new Map<string, Promise<void>>();

test.before(async () => {
  // Under scripts/test.sh TMPDIR is the area's own directory in /tmp: outside the checkout either way.
  work = await mkdtemp(path.join(tmpdir(), 'pyml-installed-'));
  assert.not.ok(realpathSync(work).startsWith(REPO), `the work directory ${work} must be outside the checkout`);
  prefix = path.join(work, 'prefix');
  projects = path.join(work, 'projects');
  await mkdir(projects, { recursive: true });
  const env = userEnv();
  const started = Date.now();
  const install = await run('bash', [path.join(REPO, 'scripts/install-cli.sh'), '--prefix', prefix, '--out', path.join(work, 'packages')], { cwd: REPO, env, timeoutMs: 420_000 });
  if (install.code !== 0) throw new Error(`scripts/install-cli.sh --prefix ${prefix} exited ${install.code}:\n${install.stderr.slice(-4000)}\n${install.stdout.slice(-2000)}`);
  process.stderr.write(`  installed pyml into ${prefix} in ${((Date.now() - started) / 1000).toFixed(0)} s\n`);
  // Start every framework's flow now: they run at once, each test awaits its own. A failure surfaces in its test.
  for (const fw of Object.keys(FRAMEWORKS)) {
    const flow = frameworkFlow(fw);
    flow.catch(() => {});
    flows.set(fw, flow);
  }
});

test.after(async () => {
  // Flows a failed assertion left behind have finished or been killed by their own timeouts by now.
  await Promise.allSettled(flows.values());
  if (work) await rm(work, { recursive: true, force: true });
});

test('the installed pyml is first on PATH, runs compiled JavaScript, and says its version and where it lives', async () => {
  const which = await run('sh', ['-c', 'command -v pyml']);
  assert.is(which.stdout.trim(), path.join(prefix, 'bin', 'pyml'));
  const installed = path.join(prefix, 'lib', 'node_modules', '@pyml', 'cli');
  assert.ok(existsSync(path.join(installed, 'dist', 'main.js')), `${installed}/dist/main.js`);
  assert.not.ok(existsSync(path.join(installed, 'src')), 'no TypeScript sources installed');
  assert.not.ok(lstatSync(path.join(prefix, 'lib', 'node_modules', '@pyml', 'core')).isSymbolicLink(), '@pyml/core is installed, not linked to the checkout');
  const v = await pyml(['--version']);
  assert.is(v.stdout.trim().split(' ')[0], 'pyml');
  assert.ok(v.stdout.startsWith(`pyml ${CLI_VERSION} (${installed}`), `pyml --version: '${v.stdout.trim()}', expected 'pyml ${CLI_VERSION} (${installed}...)'`);
});

test('onnx: the project\'s own npm test (its printed next step) passes with nothing installed; its README\'s typecheck step works', async () => {
  await flows.get('onnx');
  const dir = path.join(projects, 'onnx-starter');
  const t = await run('npm', ['test'], { cwd: dir });
  assert.is(t.code, 0, `npm test in ${dir}:\n${t.stdout.slice(-3000)}\n${t.stderr.slice(-2000)}`);
  assert.match(t.stdout, /# pass 1/);
  assert.not.ok(existsSync(path.join(dir, 'node_modules')), 'npm test installed nothing');
  // The README's optional editor-types step: npm link the installed pyml's packages (offline: they are symlinks),
  // then tsc (the checkout's compiler stands in for `npx -p typescript`, which would download it).
  const link = await run('npm', ['link', '--offline', '@pyml/core', '@pyml/contract', '@pyml/plugin-onnx'], { cwd: dir, env: { ...userEnv(), NPM_CONFIG_PREFIX: prefix } });
  assert.is(link.code, 0, `npm link in ${dir}:\n${link.stderr.slice(-2000)}`);
  assert.ok(realpathSync(path.join(dir, 'node_modules', '@pyml', 'core')).startsWith(realpathSync(prefix)), 'linked to the installed @pyml/core');
  const tsc = await run(process.execPath, [path.join(REPO, 'node_modules', 'typescript', 'bin', 'tsc'), '-p', dir, '--noEmit'], { cwd: dir });
  assert.is(tsc.code, 0, `the project does not typecheck against the installed pyml's types:\n${tsc.stdout.slice(-3000)}`);
});

test('a third-party plugin from `pyml plugin init`: its example, a project naming it by path, and one that installs it', async () => {
  const plugin = path.join(projects, 'pyml-plugin-lin');
  await pyml(['plugin', 'init', plugin]);
  const expected = ['output FP32 [2,2]'];
  // [1,2,3]·W + b and [0,0,0]·W + b, W and b from the scaffold's weights CSV.
  const values = [2.6, 1.2, 0.1, 0.2];
  const checkValues = (r: Response, what: string) => (r.outputs[0]!.data as number[]).forEach((v, i) => assert.ok(Math.abs(v - values[i]!) < 1e-5, `${what}: output[${i}] = ${v}, expected ${values[i]}`));

  // 1. The plugin's own example project (its pyml.config.json names the plugin as "..").
  checkValues((await buildAndPredict(path.join(plugin, 'example'), expected)).response, 'the plugin\'s example');

  // 2. A project beside it naming it by path, in a JSON config; nothing installed anywhere.
  const byPath = path.join(projects, 'uses-plugin-by-path');
  await mkdir(path.join(byPath, 'weights'), { recursive: true });
  await copyFile(path.join(plugin, 'example', 'weights', 'model.linear.csv'), path.join(byPath, 'weights', 'model.linear.csv'));
  await copyFile(path.join(plugin, 'example', 'sample.json'), path.join(byPath, 'sample.json'));
  await writeFile(path.join(byPath, 'pyml.config.json'), JSON.stringify({ name: 'by-path', version: '1.0.0', weights: ['./weights/model.linear.csv'], plugins: ['../pyml-plugin-lin'] }));
  checkValues((await buildAndPredict(byPath, expected)).response, 'a project naming the plugin by path');

  // 3. A project that installs it with npm, offline: the optional @pyml/* peers make npm fetch nothing; its
  //    pyml.config.ts imports the plugin by package name and defineConfig from the installed pyml's @pyml/core.
  const installed = path.join(projects, 'uses-plugin-installed');
  await mkdir(path.join(installed, 'weights'), { recursive: true });
  await copyFile(path.join(plugin, 'example', 'weights', 'model.linear.csv'), path.join(installed, 'weights', 'model.linear.csv'));
  await copyFile(path.join(plugin, 'example', 'sample.json'), path.join(installed, 'sample.json'));
  await writeFile(path.join(installed, 'package.json'), `${JSON.stringify({ name: 'uses-plugin-installed', private: true, type: 'module' }, null, 2)}\n`);
  const npm = await run('npm', ['install', '--no-save', '--offline', '--no-audit', '--no-fund', '../pyml-plugin-lin'], { cwd: installed });
  assert.is(npm.code, 0, `npm install --no-save --offline ../pyml-plugin-lin:\n${npm.stderr.slice(-2000)}`);
  assert.ok(existsSync(path.join(installed, 'node_modules', 'pyml-plugin-lin', 'package.json')), 'the plugin is in node_modules');
  assert.not.ok(existsSync(path.join(installed, 'node_modules', '@pyml')), 'npm fetched no @pyml/* package (the peers are optional)');
  await writeFile(path.join(installed, 'pyml.config.ts'), [
    "import { defineConfig } from '@pyml/core';",
    "import lin from 'pyml-plugin-lin';",
    '',
    "export default defineConfig({ name: 'installed', version: '1.0.0', weights: ['./weights/model.linear.csv'], plugins: [lin()] });",
    '',
  ].join('\n'));
  const built = await buildAndPredict(installed, expected);
  checkValues(built.response, 'a project that installed the plugin');
  assert.is(built.name, 'installed');
});

test('a JSON config names a built-in plugin by its short name ("onnx")', async () => {
  await flows.get('onnx'); // its starter weights
  const dir = path.join(projects, 'json-onnx');
  await mkdir(path.join(dir, 'weights'), { recursive: true });
  await copyFile(path.join(projects, 'onnx-starter', 'weights', 'model.onnx'), path.join(dir, 'weights', 'model.onnx'));
  await copyFile(path.join(projects, 'onnx-starter', 'sample.json'), path.join(dir, 'sample.json'));
  // No model: the onnx plugin's default model serves the graph; the signature comes from the graph.
  await writeFile(path.join(dir, 'pyml.config.json'), JSON.stringify({ name: 'json-onnx', version: '1.0.0', weights: ['./weights/model.onnx'], plugins: ['onnx'] }, null, 2));
  const { response } = await buildAndPredict(dir, FRAMEWORKS.onnx!);
  assert.is(response.model_name, 'json-onnx');
});

// The frameworks' flows have been running since the install; pytorch (its Python layer) finishes last.
for (const fw of Object.keys(FRAMEWORKS)) {
  test(`${fw}: init → build → predict → serve (one REST call), outside the checkout`, async () => {
    await flows.get(fw);
  });
}

test.run();
