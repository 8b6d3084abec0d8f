import { spawn, spawnSync } from 'node:child_process';
import { chmod, chown, cp, mkdir, mkdtemp, readFile, readdir, rm, symlink, utimes } from 'node:fs/promises';
import { join } from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { PYML_BIN, REPO } from '../helpers/cli.ts';

/**
 * The same project gives the same image digest whatever the machine's incidentals: the project's directory, the
 * user who builds, the umask, the time zone, the locale and the files' mtimes. Each build starts from an empty
 * cache, so nothing is reused between them; the node binary and the base are this machine's in both.
 */

interface Build { digest: string; layers: Record<string, string> }

const NOBODY = 65534;

/** `pyml build` in a child process under the given identity, umask and environment; its digest and layers. */
function build(project: string, out: string, cache: string, how: { uid?: number; umask: string; env: Record<string, string> }): Promise<Build> {
  const env: Record<string, string> = {
    PATH: process.env.PATH ?? '/usr/bin:/bin', NODE_OPTIONS: process.env.NODE_OPTIONS ?? '', PYML_CACHE_DIR: cache, NO_COLOR: '1',
    HOME: cache, ...how.env,
  };
  const command = `umask ${how.umask} && exec "${process.execPath}" "${PYML_BIN}" build "${project}" --out "${out}" --json`;
  const argv = how.uid === undefined ? ['sh', '-c', command] : ['setpriv', `--reuid=${how.uid}`, `--regid=${how.uid}`, '--clear-groups', 'sh', '-c', command];
  return new Promise((resolve, reject) => {
    const child = spawn(argv[0], argv.slice(1), { cwd: project, env, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d) => (stdout += d));
    child.stderr.on('data', (d) => (stderr += d));
    child.on('error', reject);
    child.on('close', async (code) => {
      if (code !== 0) return reject(new Error(`pyml build exited ${code}:\n${stderr}`));
      try {
        const digest = (JSON.parse(stdout) as { digest: string }).digest;
        resolve({ digest, layers: await layersOf(out) });
      } catch (error) {
        reject(error);
      }
    });
  });
}

/** Each part's layer digest, from the OCI layout's manifest: what to name when two builds differ. */
async function layersOf(layout: string): Promise<Record<string, string>> {
  const blob = async (digest: string) => JSON.parse(await readFile(join(layout, 'blobs', ...digest.split(':')), 'utf8'));
  const index = JSON.parse(await readFile(join(layout, 'index.json'), 'utf8'));
  const manifest = await blob(index.manifests[0].digest);
  return Object.fromEntries((manifest.layers as { digest: string; annotations?: Record<string, string> }[])
    .map((l, i) => [l.annotations?.['dev.pyml.part'] ?? l.annotations?.['org.opencontainers.image.title'] ?? `layer ${i}`, l.digest]));
}

/** Gives every file and folder under `dir` the same odd mtime. */
async function touchAll(dir: string, when: Date): Promise<void> {
  for (const entry of await readdir(dir, { withFileTypes: true, recursive: true })) {
    if (entry.name === 'node_modules' || entry.parentPath.includes('node_modules')) continue;
    await utimes(join(entry.parentPath, entry.name), when, when).catch(() => {});
  }
  await utimes(dir, when, when);
}

async function chownAll(dir: string, uid: number): Promise<void> {
  await chown(dir, uid, uid);
  for (const entry of await readdir(dir, { withFileTypes: true, recursive: true })) {
    if (entry.parentPath.includes('node_modules') || entry.name === 'node_modules') continue;
    await chown(join(entry.parentPath, entry.name), uid, uid);
  }
}

/** A copy of an example (node_modules linked to the checkout's, as an installed project would have). */
async function copyProject(example: string, to: string): Promise<string> {
  await cp(join(REPO, 'examples', example), to, { recursive: true, filter: (src) => !src.includes('/.pyml') });
  await symlink(join(REPO, 'node_modules'), join(to, 'node_modules'));
  return to;
}

/**
 * Whether another user can run this checkout's build tools: a checkout under a private directory (/root/...) is not
 * reachable by `nobody`, and then the second build runs as this user, with everything else varied, and says so.
 */
function otherUserCanBuild(): boolean {
  const probe = spawnSync('setpriv', [`--reuid=${NOBODY}`, `--regid=${NOBODY}`, '--clear-groups', 'test', '-x', join(REPO, 'node_modules/.bin/esbuild')]);
  return probe.status === 0;
}

for (const example of ['onnx-iris', 'tfjs-iris', 'sklearn-iris']) {
  test(`${example}: one digest across directories, users, umasks, time zones, locales and mtimes`, async () => {
    // Under /tmp itself, not the test run's private TMPDIR: the other user must reach the project and its cache.
    const work = await mkdtemp('/tmp/pyml-repro-');
    await chmod(work, 0o755);
    const otherUser = otherUserCanBuild();
    if (!otherUser) process.stderr.write(`  note: ${REPO} is not reachable by uid ${NOBODY}; the second build runs as this user\n`);
    try {
      const first = await copyProject(example, join(work, 'a'));
      const second = await copyProject(example, join(work, 'second-project'));
      await touchAll(first, new Date('2021-03-04T05:06:07Z'));
      await touchAll(second, new Date('2025-11-30T23:59:58Z'));
      const caches = [join(work, 'cache-a'), join(work, 'cache-b')];
      for (const c of caches) await mkdir(c, { recursive: true });
      const outB = join(work, 'out-b');
      await mkdir(outB);
      for (const path of [work, second, caches[1], outB]) await chownAll(path, NOBODY);
      const a = await build(first, join(work, 'out-a'), caches[0], { umask: '022', env: { TZ: 'UTC', LC_ALL: 'C', LANG: 'C' } });
      const b = await build(second, join(outB, 'image'), caches[1], {
        ...(otherUser ? { uid: NOBODY } : {}), umask: '077', env: { TZ: 'Pacific/Kiritimati', LC_ALL: 'de_DE.UTF-8', LANG: 'de_DE.UTF-8' },
      });
      assert.ok(Object.keys(a.layers).length >= 4, `the image has its parts as layers: ${JSON.stringify(a.layers)}`);
      const differing = Object.keys({ ...a.layers, ...b.layers }).filter((k) => a.layers[k] !== b.layers[k]);
      assert.equal(differing, [], `layers that differ: ${differing.map((k) => `${k} (${a.layers[k]} vs ${b.layers[k]})`).join(', ')}`);
      assert.is(b.digest, a.digest);
    } finally {
      await rm(work, { recursive: true, force: true });
    }
  });
}

test.run();
