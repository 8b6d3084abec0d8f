/**
 * `--progress auto|tty|plain|quiet` (and PYML_PROGRESS) on real commands, piped as in CI: plain lines with times and
 * sizes on stderr, warnings in every mode (a plugin's "trial load skipped"), `--json`'s stdout one parseable object,
 * a forced tty drawing bars with done/total and a percentage; a real pull from Debian's docker-registry.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { rm } from 'node:fs/promises';
import path from 'node:path';
import { parseJson, pyml } from '../helpers/cli.ts';
import { copyExample, editFile, tempDir } from '../helpers/project.ts';
import { startRegistry, type RegistryServer } from '../helpers/registry-server.ts';
import { describeTransfer } from '../../packages/cli/src/progress.ts';

let project = '';
let out = '';
let registry: RegistryServer;
const WARNING = /^warning: onnx: weights\/model\.onnx: trial load skipped \(0 MB is over loadCheckMaxMB\); the file was parsed only$/m;
const PLAIN_STEP = /^\[\s*\d+\.\d+s\] bundling model code$/m;

test.before(async () => {
  out = await tempDir('pyml-progress-');
  // A trial-load limit below the iris model's 868 bytes: the onnx plugin warns that it only parsed the file.
  project = await copyExample('onnx-iris');
  await editFile(path.join(project, 'pyml.config.ts'), (t) => t.replace('onnx()', 'onnx({ loadCheckMaxMB: 0.0001 })'));
  // And the model warns at init through its logger, as a model with a missing optional file would.
  await editFile(path.join(project, 'src', 'model.ts'), (t) => t.replace("this.session = await", "ctx.logger.warn('iris: no calibration file, raw scores');\n    this.session = await"));
  registry = await startRegistry();
});
test.after(async () => {
  await registry?.stop();
  await rm(out, { recursive: true, force: true });
  await rm(project, { recursive: true, force: true });
});

test('piped with no --progress (auto): plain lines with times and sizes on stderr, the warning among them', async () => {
  const r = await pyml(['build', project, '--out', path.join(out, 'auto')]);
  assert.is(r.code, 0, r.stderr);
  assert.match(r.stderr, PLAIN_STEP);
  assert.match(r.stderr, /^\[\s*\d+\.\d+s\]\s+weights: [\d.]+ (B|KiB) in \d+\.\d s/m, 'a finished layer with its size and time');
  assert.match(r.stderr, WARNING);
  assert.not.match(r.stderr, /\r|\x1b\[/, 'no redraws on a pipe');
  assert.match(r.stdout, /^built iris:1\.0\.0/, 'the result stays on stdout');
  assert.not.match(r.stdout, /bundling|warning/);
});

test('--progress quiet: only the warning', async () => {
  const r = await pyml(['build', project, '--out', path.join(out, 'quiet'), '--progress', 'quiet']);
  assert.is(r.code, 0, r.stderr);
  assert.match(r.stderr, WARNING);
  assert.is(r.stderr.trim().split('\n').length, 1, `one line: ${r.stderr}`);
});

test('--json: stdout parses, the warning still on stderr, and no steps unless asked', async () => {
  const quiet = await pyml(['build', project, '--out', path.join(out, 'json'), '--json']);
  assert.is(quiet.code, 0, quiet.stderr);
  assert.is(parseJson<{ ok: boolean }>(quiet).ok, true);
  assert.match(quiet.stderr, WARNING);
  assert.not.match(quiet.stderr, PLAIN_STEP, '--json is quiet unless asked');
});

test('--progress tty on a pipe: redrawn steps, the warning as its own line', async () => {
  const r = await pyml(['build', project, '--out', path.join(out, 'tty'), '--progress', 'tty']);
  assert.is(r.code, 0, r.stderr);
  assert.match(r.stderr, /^• bundling model code$/m);
  assert.match(r.stderr, WARNING);
  assert.not.match(r.stderr, PLAIN_STEP);
});

test('a bad --progress or PYML_PROGRESS is a usage error with did-you-mean', async () => {
  const flag = await pyml(['build', project, '--progress', 'plian']);
  assert.is(flag.code, 2);
  assert.match(flag.stderr, /^error: --progress must be one of auto, tty, plain, quiet; got 'plian'; did you mean 'plain'\?/);
  const env = await pyml(['pull', 'x/y:1', '--out', path.join(out, 'never')], { env: { PYML_PROGRESS: 'loud' } });
  assert.is(env.code, 2);
  assert.match(env.stderr, /PYML_PROGRESS must be one of/);
  const missing = await pyml(['build', project, '--progress']);
  assert.is(missing.code, 2);
  assert.match(missing.stderr, /--progress needs a value/);
});

test('push and pull through a real registry: plain lines with done/total and 100%; tty bars with a percentage', async () => {
  const image = path.join(out, 'auto');
  const ref = `${registry.host}/progress/iris:1.0.0`;
  const pushed = await pyml(['push', image, ref, '--progress', 'plain']);
  assert.is(pushed.code, 0, pushed.stderr);
  assert.match(pushed.stderr, /^\[\s*\d+\.\d+s\]\s+layer[^:]*: [\d.]+ (B|KiB|MiB) \/ [\d.]+ (B|KiB|MiB) \(100%\) in \d+\.\d s$/m, pushed.stderr);
  const plain = await pyml(['pull', ref, '--out', path.join(out, 'pulled-plain')]);
  assert.is(plain.code, 0, plain.stderr);
  assert.match(plain.stderr, /^\[\s*\d+\.\d+s\] fetching layer \d+ sha256:[0-9a-f]{12} \(\d+ bytes\)$/m, plain.stderr);
  assert.match(plain.stderr, /\/ [\d.]+ (B|KiB|MiB) \(100%\)/);
  const tty = await pyml(['pull', ref, '--out', path.join(out, 'pulled-tty'), '--progress', 'tty']);
  assert.is(tty.code, 0, tty.stderr);
  const drawn = JSON.stringify(tty.stderr.slice(0, 800));
  assert.match(tty.stderr, /\r\x1b\[2K {2}config \[=+\] [\d.]+ (B|KiB)\/[\d.]+ (B|KiB) 100%/, drawn);
  // The 100 MiB base layer takes several redraws (every 100 ms) on loopback: done/total, percentage, ETA.
  assert.match(tty.stderr, /\r\x1b\[2K {2}layer 0 \[[=> ]+\] [\d.]+ (KiB|MiB)\/[\d.]+ MiB \d+% ETA \d+ s/, drawn);
  // --json with --progress=plain: the lines on stderr, stdout still one object.
  const json = await pyml(['pull', ref, '--out', path.join(out, 'pulled-json'), '--json', '--progress=plain']);
  assert.is(json.code, 0, json.stderr);
  assert.is(parseJson<{ ok: boolean }>(json).ok, true);
  assert.match(json.stderr, /^\[\s*\d+\.\d+s\] fetching layer \d+ /m);
  // PYML_PROGRESS=quiet: nothing at all (this pull has no warning).
  const quiet = await pyml(['pull', ref, '--out', path.join(out, 'pulled-quiet')], { env: { PYML_PROGRESS: 'quiet' } });
  assert.is(quiet.code, 0, quiet.stderr);
  assert.is(quiet.stderr, '');
  assert.match(quiet.stdout, /^pulled /);
});

test('predict: the model\'s warning on stderr with --json and with --progress quiet, stdout only the answer', async () => {
  const sample = path.join(project, 'sample.json');
  const json = await pyml(['predict', path.join(out, 'auto'), '--input', sample, '--json']);
  assert.is(json.code, 0, json.stderr);
  assert.is(parseJson<{ ok: boolean }>(json).ok, true);
  assert.match(json.stderr, /^warning: iris: no calibration file, raw scores$/m);
  const quiet = await pyml(['predict', path.join(out, 'auto'), '--input', sample, '--progress', 'quiet']);
  assert.is(quiet.code, 0, quiet.stderr);
  assert.match(quiet.stderr, /^warning: iris: no calibration file, raw scores$/m);
  assert.not.match(quiet.stdout, /calibration/);
});

test('a transfer with a known total says done/total, its percentage and an ETA from its rate', () => {
  const started = 1_000_000;
  // 25 MiB of 100 MiB in 5 s: 5 MiB/s, 75 MiB left → 15 s.
  assert.is(describeTransfer({ bytes: 25 * 2 ** 20, total: 100 * 2 ** 20, started }, started + 5000), '25 MiB / 100 MiB (25%) in 5.0 s, ETA 15 s');
  assert.is(describeTransfer({ bytes: 100 * 2 ** 20, total: 100 * 2 ** 20, started }, started + 5000), '100 MiB / 100 MiB (100%) in 5.0 s');
  assert.is(describeTransfer({ bytes: 3 * 2 ** 20, started }, started + 2000), '3.0 MiB in 2.0 s (1.5 MiB/s)');
});

test.run();
