/**
 * CLI conventions: every verb has --help with examples (exit 0), --version, errors on stderr with stable exit
 * codes (0 ok, 1 failure while running, 2 bad usage, config or input; test/cli/exit-codes.test.ts runs every verb on
 * the same bad inputs), no colour codes when stderr is not a terminal or NO_COLOR is set.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { existsSync, readFileSync } from 'node:fs';
import { rm } from 'node:fs/promises';
import path from 'node:path';
import { PYML_BIN, REPO, pyml, runProcess } from '../helpers/cli.ts';
import { requireTool } from '../helpers/tools.ts';
import { copyExample, tempDir } from '../helpers/project.ts';

const COMMANDS_DIR = path.join(REPO, 'packages', 'cli', 'src', 'commands');

/** The verbs `pyml --help` lists. */
async function verbs(): Promise<string[]> {
  const r = await pyml(['--help']);
  const section = r.stdout.split('Commands:\n')[1]?.split('\n\n')[0] ?? '';
  return section.split('\n').map((l) => l.trim().split(/\s+/)[0]!).filter(Boolean);
}

test('pyml --help lists the verbs and the exit codes; exit 0', async () => {
  const r = await pyml(['--help']);
  assert.is(r.code, 0);
  assert.match(r.stdout, /Exit codes: 0 ok, 1 failure while running .*, 2 bad usage, config or input\./);
  const list = await verbs();
  for (const v of ['build', 'inspect', 'predict', 'serve', 'batch', 'push', 'pull', 'diff', 'init', 'plugin', 'deploy', 'cache', 'images', 'login']) assert.ok(list.includes(v), v);
  // Subcommands are named in their verb's line.
  for (const sub of ['deploy k8s', 'deploy serve-image', 'cache du', 'cache prune', 'plugin init', 'inspect image']) assert.ok(r.stdout.includes(`(${sub}`) || r.stdout.includes(`${sub})`), sub);
});

test('pyml --version prints the CLI package version and where it runs from', async () => {
  const r = await pyml(['--version']);
  assert.is(r.code, 0);
  const { version } = JSON.parse(readFileSync(path.join(REPO, 'packages', 'cli', 'package.json'), 'utf8')) as { version: string };
  assert.is(r.stdout.trim(), `pyml ${version} (${path.join(REPO, 'packages', 'cli')}, node ${process.version})`);
  const j = await pyml(['--version', '--json']);
  assert.equal(JSON.parse(j.stdout), { version, path: path.join(REPO, 'packages', 'cli'), node: process.version });
});

test('every verb: --help exits 0 with a usage line and at least one example', async () => {
  const missing: string[] = [];
  for (const verb of await verbs()) {
    if (!existsSync(path.join(COMMANDS_DIR, `${verb}.ts`))) {
      // Routed but not written yet: the CLI must say so cleanly (exit 2), not crash.
      const r = await pyml([verb, '--help']);
      assert.is(r.code, 2, `${verb}: ${r.stderr}`);
      assert.match(r.stderr, new RegExp(`'pyml ${verb}' is not available`));
      missing.push(verb);
      continue;
    }
    // -h is the same option as --help (parseArgs short): checked once, to keep the test short.
    for (const flag of verb === 'build' ? ['--help', '-h'] : ['--help']) {
      const r = await pyml([verb, flag]);
      assert.is(r.code, 0, `pyml ${verb} ${flag}: exit ${r.code}: ${r.stderr}`);
      assert.match(r.stdout, new RegExp(`^Usage: pyml ${verb}`), `pyml ${verb} ${flag}: usage line`);
      const examples = r.stdout.split(/\nExamples?:\n/)[1];
      assert.ok(examples, `pyml ${verb} ${flag}: an Examples section`);
      assert.match(examples!, new RegExp(`^\\s+(\\S+ \\S+ )?.*pyml ${verb}`, 'm'), `pyml ${verb}: an example that runs pyml ${verb}`);
      assert.is(r.stderr, '', `pyml ${verb} ${flag}: nothing on stderr`);
    }
  }
  if (missing.length) console.log(`  (verbs routed but not present: ${missing.join(', ')})`);
});

test('errors go to stderr with exit 2 for usage and bad input, 1 for failures; no colour codes off a terminal', async () => {
  const unknown = await pyml(['frobnicate']);
  assert.is(unknown.code, 2);
  assert.is(unknown.stdout, '');
  assert.match(unknown.stderr, /^error: unknown command 'frobnicate'/);
  const badFlag = await pyml(['inspect', 'image', '/nonexistent', '--no-such-flag']);
  assert.is(badFlag.code, 2);
  assert.match(badFlag.stderr, /^error: unknown option --no-such-flag for pyml inspect/);
  assert.match(badFlag.stderr, /\n {2}see pyml inspect --help\n$/);
  const missing = await pyml(['inspect', 'image', '/nonexistent-image-dir'], { env: { NO_COLOR: '' } });
  assert.is(missing.code, 2, 'a missing image is bad input');
  assert.is(missing.stdout, '');
  assert.match(missing.stderr, /^error: no image at \/nonexistent-image-dir/);
  // A failure while running: the registry is not there.
  const failure = await pyml(['pull', '127.0.0.1:9/nothing:1', '--out', '/tmp/pyml-conventions-never'], { env: { NO_COLOR: '', PYML_REGISTRY_ATTEMPTS: '1' } });
  assert.is(failure.code, 1, failure.stderr);
  assert.is(failure.stdout, '');
  assert.match(failure.stderr, /^error: /);
  assert.not.match(failure.stderr, /see pyml/, 'the help is for usage errors');
  for (const r of [unknown, badFlag, missing, failure]) assert.not.match(r.stderr, /\x1b\[/, 'no ANSI colour codes when stderr is a pipe');
});

test('on a terminal, errors are coloured unless NO_COLOR is set (util-linux script gives the child a pty)', async () => {
  requireTool('script', 'bsdutils');
  const onTty = (env: string) => runProcess('script', ['-qec', `env ${env} ${process.execPath} ${PYML_BIN} frobnicate`, '/dev/null']);
  const coloured = await onTty('-u NO_COLOR -u FORCE_COLOR');
  assert.match(coloured.stdout, /\x1b\[31merror\x1b\[0m: unknown command/, 'red "error" on a terminal');
  const plain = await onTty('NO_COLOR=1');
  assert.match(plain.stdout, /error: unknown command/);
  assert.not.match(plain.stdout, /\x1b\[/, 'NO_COLOR turns colour off');
});

test('progress is redrawn only on a terminal; a pipe gets plain lines (--progress auto)', async () => {
  requireTool('script', 'bsdutils');
  const out = await tempDir('pyml-progress-');
  const project = await copyExample('onnx-iris');
  try {
    const piped = await pyml(['build', project, '--out', path.join(out, 'a')]);
    assert.is(piped.code, 0, piped.stderr);
    assert.match(piped.stderr, /^\[\s*\d+\.\d+s\] bundling model code$/m, 'plain step lines on a pipe');
    assert.not.match(piped.stderr, /\r|\x1b\[/, 'no redraws or colour on a pipe');
    const tty = await runProcess('script', ['-qec', `${process.execPath} ${PYML_BIN} build ${project} --out ${path.join(out, 'b')}`, '/dev/null']);
    assert.is(tty.code, 0, tty.stdout);
    assert.match(tty.stdout, /• bundling model code/, 'progress steps on a terminal');
  } finally {
    await rm(out, { recursive: true, force: true });
    await rm(project, { recursive: true, force: true });
  }
});

test.run();
