/**
 * Every `--json` output has a schema in schemas/ (build, inspect and diff are checked in diff-and-schemas.test.ts):
 * each is validated here with ajv against the real command's output, success and failure, and the failure form
 * of every command is schemas/error-output.schema.json's. Counts and times are numbers, `ok` is always there.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { spawn } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import { rm } from 'node:fs/promises';
import path from 'node:path';
import { Ajv, type ValidateFunction } from 'ajv';
import { PYML_BIN, REPO, parseJson, pyml, testEnv } from '../helpers/cli.ts';
import { startRegistry } from '../helpers/registry-server.ts';
import { tempDir } from '../helpers/project.ts';

const ajv = new Ajv({ allErrors: true, strict: true });
const validators = new Map<string, ValidateFunction>();
function validator(name: string): ValidateFunction {
  if (!validators.has(name)) validators.set(name, ajv.compile(JSON.parse(readFileSync(path.join(REPO, 'schemas', `${name}-output.schema.json`), 'utf8'))));
  return validators.get(name)!;
}
function assertValid(name: string, value: unknown, what: string): void {
  const validate = validator(name);
  if (!validate(value)) assert.unreachable(`${what} does not match schemas/${name}-output.schema.json: ${ajv.errorsText(validate.errors)}\n${JSON.stringify(value).slice(0, 1500)}`);
}

const SAMPLE_CSV = path.join(REPO, 'examples', 'onnx-iris', 'sample.csv');
const FAKE_DIGEST = `sha256:${'a'.repeat(64)}`;
let dir = '';
let image = '';

test.before(async () => {
  dir = await tempDir('pyml-json-schemas-');
  image = path.join(dir, 'iris');
  const r = await pyml(['build', path.join(REPO, 'examples', 'onnx-iris'), '--out', image]);
  assert.is(r.code, 0, r.stderr);
});
test.after(async () => { await rm(dir, { recursive: true, force: true }); });

test('every schema compiles under ajv strict mode, and every command with --json has one', () => {
  const names = readdirSync(path.join(REPO, 'schemas')).filter((f) => f.endsWith('-output.schema.json')).map((f) => f.replace('-output.schema.json', ''));
  for (const n of names) validator(n);
  for (const n of ['build', 'inspect', 'diff', 'predict', 'serve', 'batch', 'push', 'pull', 'init', 'plugin-init', 'cache', 'deploy', 'images', 'login', 'logout', 'rmi', 'tag', 'version', 'error']) assert.ok(names.includes(n), n);
});

test('--version --json, and the failure form of every verb (error-output and the verb\'s own schema)', async () => {
  assertValid('version', parseJson(await pyml(['--version', '--json'])), '--version --json');
  const verbs: [string, string][] = [['build', 'build'], ['inspect', 'inspect'], ['diff', 'diff'], ['predict', 'predict'], ['serve', 'serve'], ['batch', 'batch'],
    ['push', 'push'], ['pull', 'pull'], ['init', 'init'], ['plugin', 'plugin-init'], ['cache', 'cache'], ['deploy', 'deploy'], ['images', 'images'], ['login', 'login'], ['logout', 'logout'], ['rmi', 'rmi'], ['tag', 'tag']];
  await Promise.all(verbs.map(async ([verb, schema]) => {
    const r = await pyml([verb, '--jsn', '--json']);
    assert.is(r.code, 2, `${verb}: ${r.stderr}`);
    const body = parseJson<{ ok: boolean; error: { exitCode: number; help: string } }>(r);
    assertValid('error', body, `${verb} --jsn --json`);
    assertValid(schema, body, `${verb} --jsn --json`);
    assert.is(body.error.help, `pyml ${verb} --help`);
  }));
  // A failure while running (exit 1): a registry that is not there.
  const failed = await pyml(['pull', '127.0.0.1:9/nothing:1', '--out', path.join(dir, 'never'), '--json'], { env: { PYML_REGISTRY_ATTEMPTS: '1' } });
  assert.is(failed.code, 1);
  assertValid('pull', parseJson(failed), 'pull --json failure');
  assertValid('error', parseJson(failed), 'pull --json failure');
});

test('predict --json: ok true and the V2 response; a failed prediction is the failure form', async () => {
  const r = await pyml(['predict', image, '--input', path.join(REPO, 'examples', 'onnx-iris', 'sample.json'), '--json']);
  assert.is(r.code, 0, r.stderr);
  assert.is(r.stdout.trim().split('\n').length, 1, 'one line');
  const body = parseJson<{ ok: boolean }>(r);
  assert.is(body.ok, true);
  assertValid('predict', body, 'predict --json');
  const csv = await pyml(['predict', image, '--input', SAMPLE_CSV, '--json']);
  assert.is(csv.code, 1);
  assertValid('predict', parseJson(csv), 'predict --json failure (columns)');
});

test('batch --json: numbers are numbers (threads too); --emit-spark --json', async () => {
  const query = `SELECT id, sepal_length::FLOAT AS a, sepal_width::FLOAT AS b, petal_length::FLOAT AS c, petal_width::FLOAT AS d FROM read_csv('${SAMPLE_CSV}')`;
  const r = await pyml(['batch', image, '--query', query, '--into', 'p', '--db', path.join(dir, 'b.duckdb'), '--keep', 'id', '--workers', '1', '--json']);
  assert.is(r.code, 0, r.stderr);
  const body = parseJson<{ threads: unknown; rows: unknown }>(r);
  assertValid('batch', body, 'batch --json');
  assert.is(typeof body.threads, 'number', 'threads is a number');
  assert.is(body.rows, 10);
  const spark = await pyml(['batch', image, '--query', query, '--into', 'p', '--keep', 'id', '--emit-spark', path.join(dir, 'job.py'), '--json']);
  assert.is(spark.code, 0, spark.stderr);
  assertValid('batch', parseJson(spark), 'batch --emit-spark --json');
});

test('serve --json: the ready line', async () => {
  const child = spawn(process.execPath, [PYML_BIN, 'serve', image, '--http', '127.0.0.1:0', '--grpc', '127.0.0.1:0', '--json'], { env: { ...process.env, ...testEnv() }, stdio: ['ignore', 'pipe', 'pipe'] });
  try {
    const line = await new Promise<string>((resolve, reject) => {
      let out = '';
      let err = '';
      child.stdout.setEncoding('utf8').on('data', (d: string) => { out += d; if (out.includes('\n')) resolve(out.split('\n')[0]!); });
      child.stderr.setEncoding('utf8').on('data', (d: string) => { err += d; });
      child.on('exit', (code) => reject(new Error(`serve exited ${code}: ${err}`)));
      setTimeout(() => reject(new Error(`no ready line in 60 s: ${err}`)), 60_000).unref();
    });
    assertValid('serve', JSON.parse(line), 'serve --json ready line');
  } finally {
    child.kill('SIGTERM');
  }
});

test('init, plugin init, cache du and cache prune --dry-run', async () => {
  const init = await pyml(['init', path.join(dir, 'model'), '--json']);
  assert.is(init.code, 0, init.stderr);
  assertValid('init', parseJson(init), 'init --json');
  const clash = await pyml(['init', path.join(dir, 'model'), '--json']);
  assert.is(clash.code, 2);
  assertValid('init', parseJson(clash), 'init --json failure');
  const plugin = await pyml(['plugin', 'init', path.join(dir, 'pyml-plugin-x'), '--json']);
  assert.is(plugin.code, 0, plugin.stderr);
  assertValid('plugin-init', parseJson(plugin), 'plugin init --json');
  const cache = path.join(dir, 'cache');
  // A cache of its own holding one unpacked image, so prune has something to list.
  await pyml(['predict', image, '--input', path.join(REPO, 'examples', 'onnx-iris', 'sample.json')], { env: { PYML_CACHE_DIR: cache } });
  const du = await pyml(['cache', 'du', '--json'], { env: { PYML_CACHE_DIR: cache } });
  assert.is(du.code, 0, du.stderr);
  assertValid('cache', parseJson(du), 'cache du --json');
  const prune = await pyml(['cache', 'prune', '--dry-run', '--json'], { env: { PYML_CACHE_DIR: cache } });
  assert.is(prune.code, 0, prune.stderr);
  const pruned = parseJson<{ removed: unknown[] }>(prune);
  assertValid('cache', pruned, 'cache prune --json');
  assert.ok(pruned.removed.length >= 1, 'the unpacked image would be removed');
});

test('deploy k8s --json (no registry contacted: LAYOUT=REPO and a digest ref)', async () => {
  const r = await pyml(['deploy', 'k8s', `${image}=registry.example.com/models/iris`, '--serve-image', `registry.example.com/pyml-serve@${FAKE_DIGEST}`, '--out', path.join(dir, 'k8s'), '--json']);
  assert.is(r.code, 0, r.stderr);
  assertValid('deploy', parseJson(r), 'deploy k8s --json');
});

test('deploy serve-image --json', async () => {
  const r = await pyml(['deploy', 'serve-image', '--out', path.join(dir, 'serve-image'), '--json']);
  assert.is(r.code, 0, r.stderr);
  assertValid('deploy', parseJson(r), 'deploy serve-image --json');
});

test('push --json and pull --json against a local registry', async () => {
  const registry = await startRegistry();
  try {
    const push = await pyml(['push', image, `${registry.host}/iris:1.0.0`, '--json']);
    assert.is(push.code, 0, push.stderr);
    assertValid('push', parseJson(push), 'push --json');
    const pull = await pyml(['pull', `${registry.host}/iris:1.0.0`, '--out', path.join(dir, 'pulled'), '--json']);
    assert.is(pull.code, 0, pull.stderr);
    assertValid('pull', parseJson(pull), 'pull --json');
  } finally {
    await registry.stop();
  }
});

test.run();
