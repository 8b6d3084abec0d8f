/**
 * README.md's "A tour" runs as written: its shell blocks are extracted and each runs as one bash script (`set -e`,
 * as a user pasting it into a shell, but stopping at the first failure) in a fresh directory holding a copy of
 * examples/onnx-iris, failing with the README line that failed and its output. The only rewrites, so that the test
 * owns its resources and binds no fixed port:
 *   - `/tmp/` is a private temp directory;
 *   - ports 8000, 8001, 9000 and 5000 are free ports; 127.0.0.1:5000 is Debian's docker-registry started here;
 *   - `docker` talks to a private engine (DOCKER_HOST), which has no bridge network: `-p HOST:8000 -p HOST:8001`
 *     becomes `--network host` with PYML_HTTP/PYML_GRPC on those host ports (the image's own settings);
 *   - `pyml` (the installed CLI) is this checkout's bin, on PATH through node_modules/.bin, as `npx pyml` finds it.
 * Background jobs (`&`) are stopped when their block ends.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { spawn } from 'node:child_process';
import { copyFile, cp, mkdir, readFile, rm, symlink, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { REPO, testEnv } from '../helpers/cli.ts';
import { startDockerd, type DockerEngine } from '../helpers/dockerd.ts';
import { tempDir } from '../helpers/project.ts';
import { freePort, startRegistry, type RegistryServer } from '../helpers/registry-server.ts';
import { requireTool } from '../helpers/tools.ts';

interface TourLine {
  /** 1-based line in README.md where the command starts. */
  readmeLine: number;
  text: string;
}

/** The tour's ```sh blocks, each a list of commands (continuation lines joined), with their README line numbers. */
export function tourBlocks(readme: string): TourLine[][] {
  const lines = readme.split('\n');
  const start = lines.findIndex((l) => l.trim() === '## A tour');
  if (start < 0) throw new Error('README.md has no "## A tour" section');
  const end = lines.findIndex((l, i) => i > start && l.startsWith('## '));
  const blocks: TourLine[][] = [];
  let block: TourLine[] | undefined;
  let pending: TourLine | undefined;
  for (let i = start + 1; i < (end < 0 ? lines.length : end); i++) {
    const line = lines[i]!;
    if (!block) {
      if (/^```(sh|bash|shell)\s*$/.test(line)) block = [];
      continue;
    }
    if (line.startsWith('```')) {
      if (pending) throw new Error(`README.md line ${pending.readmeLine}: a continued command runs into the end of its block`);
      blocks.push(block);
      block = undefined;
      continue;
    }
    if (pending) pending.text += ` ${line.trim()}`;
    else if (line.trim()) pending = { readmeLine: i + 1, text: line };
    if (pending && pending.text.endsWith('\\')) {
      pending.text = pending.text.slice(0, -1).trimEnd();
      continue;
    }
    if (pending) block.push(pending);
    pending = undefined;
  }
  return blocks;
}

let work = '';
let tmp = '';
let registry: RegistryServer;
let engine: DockerEngine;
const ports = new Map<string, string>();

/** The rewrites the header lists, applied to one command. */
function rewrite(text: string): string {
  let out = text.replace(/\/tmp\//g, `${tmp}/`);
  // No bridge on the private engine: published ports become host networking with the image's port settings.
  out = out.replace(/^(docker run\b.*?)((?:\s+-p\s+\d+:\d+)+)/, (_m, head: string, publish: string) => {
    const env = [...publish.matchAll(/-p\s+(\d+):(\d+)/g)].map(([, host, inside]) => {
      if (inside === '8000') return `-e PYML_HTTP=127.0.0.1:${host}`;
      if (inside === '8001') return `-e PYML_GRPC=127.0.0.1:${host}`;
      throw new Error(`the tour publishes container port ${inside}, which the image does not serve`);
    });
    return `${head} --network host ${env.join(' ')}`;
  });
  for (const [from, to] of ports) out = out.replace(new RegExp(`(?<![\\d.])${from}(?!\\d)`, 'g'), to);
  return out;
}

/** Runs one block as a bash script; resolves with its output, or rejects naming the README line that failed. */
async function runBlock(block: TourLine[], env: Record<string, string>): Promise<string> {
  const script = [
    'set -e -o pipefail',
    // LINENO is the script's line: the runner maps it back to README.md.
    'trap \'echo "tour-failed-at $LINENO exit $?" >&2\' ERR',
    ...block.map((l) => rewrite(l.text)),
  ];
  const file = path.join(tmp, `block-${block[0]!.readmeLine}.sh`);
  await writeFile(file, `${script.join('\n')}\n`);
  // Its own process group: background jobs (pyml serve &) and their children are stopped with it.
  const child = spawn('bash', [file], { cwd: work, env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'], detached: true });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (d) => (stdout += d));
  child.stderr.on('data', (d) => (stderr += d));
  const timer = setTimeout(() => { try { process.kill(-child.pid!, 'SIGKILL'); } catch { /* gone */ } }, 600_000);
  const code = await new Promise<number>((resolve) => child.on('close', (c) => resolve(c ?? -1)));
  clearTimeout(timer);
  // Stop what the block left running in the background (its process group), then give it a moment to drain.
  try { process.kill(-child.pid!, 'SIGTERM'); } catch { /* nothing left */ }
  if (code !== 0) {
    const at = /tour-failed-at (\d+) exit (\d+)/.exec(stderr);
    const line = at ? block[Number(at[1]) - 3] : undefined;
    throw new Error(`README.md tour: ${line ? `line ${line.readmeLine} failed (exit ${at![2]}): ${line.text}` : `a block starting at line ${block[0]!.readmeLine} failed (exit ${code})`}\nstdout: ${stdout.slice(-1500)}\nstderr: ${stderr.slice(-3000)}`);
  }
  return stdout;
}

test.before(async () => {
  requireTool('curl');
  tmp = await tempDir('pyml-tour-tmp-');
  work = await tempDir('pyml-tour-');
  await mkdir(path.join(work, 'examples'));
  await cp(path.join(REPO, 'examples', 'onnx-iris'), path.join(work, 'examples', 'onnx-iris'), { recursive: true, filter: (src) => !src.includes(`${path.sep}.pyml`) });
  await symlink(path.join(REPO, 'node_modules'), path.join(work, 'node_modules'));
  await copyFile(path.join(REPO, '.npmrc'), path.join(work, '.npmrc'));
  for (const p of ['8000', '8001', '9000', '5000']) ports.set(p, String(await freePort()));
  registry = await startRegistry();
  ports.set('5000', String(registry.port));
  engine = await startDockerd().catch((error: Error) => {
    throw new Error(`the tour's docker lines need a private Docker engine (apt-get install docker.io; run as root): ${error.message}`);
  });
});
test.after(async () => {
  await engine?.stop();
  await registry?.stop();
  await rm(work, { recursive: true, force: true });
  await rm(tmp, { recursive: true, force: true });
});

test('the tour\'s blocks are found, continuation lines joined', async () => {
  const blocks = tourBlocks(await readFile(path.join(REPO, 'README.md'), 'utf8'));
  assert.ok(blocks.length >= 3, `${blocks.length} blocks`);
  const all = blocks.flat().map((l) => l.text);
  assert.ok(all.some((t) => t.startsWith('npx pyml build examples/onnx-iris')));
  assert.ok(all.some((t) => /^curl -s localhost:8000\/v2\/models\/iris\/infer -d '\{/.test(t)), 'a curl with its -d joined');
});

test('a failing line is named by its README line and text', async () => {
  const block = [{ readmeLine: 70, text: 'echo one' }, { readmeLine: 71, text: 'ls /tmp/no-such-tour-file' }, { readmeLine: 72, text: 'echo never' }];
  try {
    await runBlock(block, {});
    assert.unreachable('the block should fail');
  } catch (error) {
    assert.match((error as Error).message, /^README\.md tour: line 71 failed \(exit 2\): ls \/tmp\/no-such-tour-file\n/);
    assert.not.match((error as Error).message, /never/);
  }
});

test('every line of the tour runs, in order', async () => {
  const blocks = tourBlocks(await readFile(path.join(REPO, 'README.md'), 'utf8'));
  const docker = await tempDir('pyml-tour-docker-config-');
  const env = {
    ...testEnv(), ...engine.env, DOCKER_CONFIG: docker,
    PATH: `${path.join(work, 'node_modules', '.bin')}:${process.env.PATH}`,
    NODE_OPTIONS: '--conditions=source',
  };
  const outputs: string[] = [];
  try {
    for (const block of blocks) outputs.push(await runBlock(block, env));
  } finally {
    await rm(docker, { recursive: true, force: true });
  }
  const all = outputs.join('\n');
  // What the tour's commands print, checked where a line exits 0 whatever it answers (curl -s).
  const answers = all.match(/"model_name":"iris"[^\n]*"outputs"/g) ?? [];
  assert.ok(answers.length >= 2, `both curls (the container, pyml serve) got a V2 answer:\n${all.slice(0, 3000)}`);
  assert.match(all, /^NAME\s+VERSION\s+DIGEST/m, 'pyml images printed its table');
});

test.run();
