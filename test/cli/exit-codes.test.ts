/**
 * One exit-code convention (README "Exit codes"): every verb, given the same bad input, exits with the same code
 * and says so the same way: 2 for bad usage, config or input (a missing image path, a directory that is not an
 * image, a model project where an image is wanted (predict and serve build it: its config error), a bad option value, an unknown option, an option given a
 * value it does not take), each ending with the verb's own `see pyml VERB --help`; Node's parser never speaks.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { mkdir, rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { REPO, pyml, type CliResult } from '../helpers/cli.ts';
import { tempDir } from '../helpers/project.ts';

let dir = '';
const SAMPLE = path.join(REPO, 'examples', 'onnx-iris', 'sample.json');

/** How each verb that takes an image is run on IMG (nothing here reaches a registry or starts a model). */
const IMAGE_VERBS: Record<string, (img: string) => string[]> = {
  predict: (img) => [img, '--input', SAMPLE],
  serve: (img) => [img, '--http', '127.0.0.1:0', '--grpc', '127.0.0.1:0'],
  batch: (img) => [img, '--query', 'SELECT 1 AS x', '--out', path.join(dir, 'dataset')],
  push: (img) => [img, '127.0.0.1:1/exit-codes:1'],
  inspect: (img) => ['image', img],
  diff: (img) => [img, img],
};

/** Every verb with a bad value for one of its options, and what the error says. */
const BAD_VALUES: Record<string, [string[], RegExp]> = {
  build: [['--platform', 'bogus'], /platform 'bogus'/],
  inspect: [['image', 'x', '--platform', 'bogus'], /--platform: platform "bogus" is not OS\/ARCH/],
  predict: [['x', '--input', SAMPLE, '--max-unpacked-bytes', 'lots'], /--max-unpacked-bytes/],
  serve: [['x', '--start', 'never'], /--start must be on-demand or eager/],
  batch: [['x', '--query', 'SELECT 1', '--out', 'o', '--workers', '0'], /--workers must be a positive integer/],
  push: [['x', 'not..a..ref'], /not an image reference/],
  pull: [['127.0.0.1:1/x:1', '--out', 'o', '--platform', 'bogus'], /platform "bogus" is not OS\/ARCH/],
  diff: [['a', 'b', '--fail-on', 'nope'], /--fail-on must be one of/],
  init: [['x', '--framework', 'nope'], /--framework must be one of/],
  plugin: [['init', 'x', '--name', 'Not A Name'], /is not an npm package name/],
  deploy: [['k8s', 'a=b/c', '--out', 'o', '--serve-image', 'x', '--format', 'nope'], /--format must be plain or kustomize/],
  cache: [['prune', '--unused-for', 'soon'], /--unused-for must be a duration/],
  images: [['extra'], /pyml images takes no arguments/],
  login: [['not a host', '-u', 'a', '-p', 'b'], /'not a host' is not a registry/],
};
const ALL_VERBS = Object.keys(BAD_VALUES);

function usageError(r: CliResult, verb: string, what: string, message: RegExp): void {
  const where = `pyml ${verb} (${what}): exit ${r.code}\n${r.stderr}`;
  assert.is(r.code, 2, where);
  assert.is(r.stdout, '', `${where}: nothing on stdout`);
  assert.match(r.stderr, /^error: /, where);
  assert.match(r.stderr, message, where);
  assert.ok(r.stderr.endsWith(`  see pyml ${verb} --help\n`), `${where}: ends with the verb's help`);
  assert.not.match(r.stderr, /ERR_PARSE_ARGS|To specify a positional argument|    at /, `${where}: no parser or stack text`);
}

/** Runs at most `n` at a time: each is a node process. */
async function pool<T>(jobs: (() => Promise<T>)[], n = 6): Promise<T[]> {
  const out: T[] = new Array(jobs.length);
  let next = 0;
  await Promise.all(Array.from({ length: n }, async () => {
    while (next < jobs.length) {
      const i = next++;
      out[i] = await jobs[i]!();
    }
  }));
  return out;
}

test.before(async () => {
  dir = await tempDir('pyml-exit-codes-');
  await mkdir(path.join(dir, 'not-an-image'));
  await writeFile(path.join(dir, 'not-an-image', 'notes.txt'), 'hello\n');
  await writeFile(path.join(dir, 'not-a-tarball.tar'), 'hello\n'.repeat(200));
  await mkdir(path.join(dir, 'project'));
  await writeFile(path.join(dir, 'project', 'pyml.config.json'), '{"name":"x","version":"1.0.0","model":"src/model.ts"}\n');
});

test.after(async () => {
  await rm(dir, { recursive: true, force: true });
});

test('an image that is missing, not an image, not a tarball, or a model project: exit 2 from every verb that takes one', async () => {
  const cases: [string, string, RegExp][] = [
    ['missing image path', path.join(dir, 'no-such-image'), /^error: no image at .*no-such-image: no such file or directory\n {2}hint: REF is/],
    ['non-image directory', path.join(dir, 'not-an-image'), /not-an-image is not an image: a directory with no index\.json/],
    ['file that is not a tarball', path.join(dir, 'not-a-tarball.tar'), /not-a-tarball\.tar is not an image: a file that is not a tarball/],
    ['model project', path.join(dir, 'project'), /project is a model project \(pyml\.config\.json\), not an image\n {2}hint: build it first: pyml build /],
  ];
  const jobs = Object.entries(IMAGE_VERBS).flatMap(([verb, args]) => cases.map(([what, img, message]) => async () => {
    // predict and serve build a model project first (the dev loop): this one's config error is exit 2, as pyml build's.
    if (what === 'model project' && (verb === 'predict' || verb === 'serve')) {
      return usageError(await pyml([verb, ...args(img), '--progress', 'quiet']), verb, what, /pyml\.config\.json: no signature: none is declared/);
    }
    usageError(await pyml([verb, ...args(img)]), verb, what, message);
  }));
  await pool(jobs);
});

test('unknown option, option given a value it does not take, option without its value, bad option value: exit 2 from every verb', async () => {
  const jobs = ALL_VERBS.flatMap((verb) => [
    async () => {
      const r = await pyml([verb, '--jsn']);
      usageError(r, verb, 'unknown option', new RegExp(`^error: unknown option --jsn for pyml ${verb}; did you mean --json\\?`));
    },
    async () => usageError(await pyml([verb, '--json=yes']), verb, 'value for a boolean', /^error: --json takes no value\n/),
    async () => {
      const [args, message] = BAD_VALUES[verb]!;
      usageError(await pyml([verb, ...args]), verb, 'bad option value', message);
    },
  ]);
  jobs.push(async () => usageError(await pyml(['build', '--help=yes']), 'build', 'value for --help (short -h)', /^error: --help takes no value\n/));
  // An option that takes a value, given none: one per verb that has such an option.
  for (const [verb, flag] of [['build', '--out'], ['batch', '--query'], ['serve', '--http'], ['pull', '--out'], ['deploy', '--out'], ['init', '--framework'], ['diff', '--fail-on'], ['login', '--username']] as const) {
    jobs.push(async () => usageError(await pyml([verb, flag]), verb, 'missing value', new RegExp(`^error: ${flag} needs a value\\n`)));
  }
  await pool(jobs);
});

test('--json errors: {ok:false, error:{message, exitCode 2, help}} on stdout, the same text on stderr', async () => {
  const r = await pyml(['inspect', 'image', path.join(dir, 'no-such-image'), '--json']);
  assert.is(r.code, 2);
  const body = JSON.parse(r.stdout) as { ok: boolean; error: { message: string; exitCode: number; help?: string; hint?: string } };
  assert.is(body.ok, false);
  assert.is(body.error.exitCode, 2);
  assert.is(body.error.help, 'pyml inspect --help');
  assert.match(body.error.message, /no image at/);
  assert.match(r.stderr, /^error: no image at/);
});

test('unknown commands and subcommands: did you mean, exit 2, the help of what was run', async () => {
  const [cmd, far, cache, deploy] = await Promise.all([pyml(['biuld']), pyml(['frobnicate']), pyml(['cache', 'prnue']), pyml(['deploy', 'k9s'])]);
  assert.is(cmd.code, 2);
  assert.is(cmd.stderr, "error: unknown command 'biuld'; did you mean 'build'?\n  see pyml --help\n");
  assert.is(far.code, 2);
  assert.match(far.stderr, /^error: unknown command 'frobnicate' \(commands: build, inspect, /);
  usageError(cache, 'cache', 'unknown cache command', /unknown cache command 'prnue' \(cache commands: du, prune\)\n {2}hint: did you mean 'prune'\?/);
  usageError(deploy, 'deploy', 'unknown deploy target', /got 'k9s'\n {2}hint: did you mean 'k8s'\?/);
  const flag = await pyml(['build', '--ot', 'x']);
  usageError(flag, 'build', 'unknown option', /^error: unknown option --ot for pyml build; did you mean --out\?\n/);
});

test('config errors are 2 and name the closest known key', async () => {
  const project = path.join(dir, 'typo');
  await mkdir(project);
  await writeFile(path.join(project, 'pyml.config.json'), '{"name":"x","version":"1.0.0","model":"src/model.ts","imgae":{},"serving":{"maxBatchSise":4}}\n');
  const r = await pyml(['build', project]);
  usageError(r, 'build', 'config typo', /pyml\.config\.json: imgae is not a known field; did you mean 'image'\?/);
  assert.match(r.stderr, /serving\.maxBatchSise is not a known field; did you mean 'maxBatchSize'\?/);
});

test('pyml with no command: the help on stderr, nothing on stdout, exit 2; pyml help VERB is pyml VERB --help', async () => {
  const r = await pyml([]);
  assert.is(r.code, 2);
  assert.is(r.stdout, '');
  assert.match(r.stderr, /^pyml \S+: /);
  assert.match(r.stderr, /\nCommands:\n/);
  const help = await pyml(['help', 'build']);
  assert.is(help.code, 0);
  assert.match(help.stdout, /^Usage: pyml build/);
});

test.run();
