import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { readdir, stat } from 'node:fs/promises';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import Docker from 'dockerode';
import { test } from 'uvu';
import { openImage } from '@pyml/image';
import { loadIntoEngine } from '@pyml/registry/docker-engine';
import { REPO, parseJson, pyml, runProcess } from '../helpers/cli.ts';
import { startDockerd, type DockerEngine } from '../helpers/dockerd.ts';
import { copyExample, tempDir } from '../helpers/project.ts';
import { v2Client, type Msg } from '../runtime/v2-client.ts';

interface Built { digest: string; refName: string; parts: { digest: string; diffId: string }[]; loaded: { tags: string[]; imageId: string } }

let engine: DockerEngine;
let project: string;
let built: Built;
let layout: string;
const docker = (args: string[]) => runProcess('docker', args, { env: engine.env });

test.before(async () => {
  engine = await startDockerd();
  project = await copyExample('onnx-iris');
});
test.after(async () => { await engine?.stop(); });

test('pyml build --load loads the image into the engine and tags it', async () => {
  layout = path.join(await tempDir(), 'image');
  const r = await pyml(['build', project, '--out', layout, '--load', '--json'], { env: engine.env });
  assert.equal(r.code, 0, r.stderr);
  built = parseJson<Built>(r);
  assert.ok(built.loaded.tags.includes('iris:1.0.0'), JSON.stringify(built.loaded));
  assert.equal((built as unknown as { tar?: string }).tar, undefined, 'the temp tarball for the engine is not reported as an output');
  // The engine's own view: the same layers (by diffId) and our config's id.
  const inspect = await docker(['image', 'inspect', 'iris:1.0.0']);
  assert.equal(inspect.code, 0, inspect.stderr);
  const [info] = JSON.parse(inspect.stdout) as { Id: string; RootFS: { Layers: string[] }; Config: { Entrypoint: string[] } }[];
  assert.deepEqual(info.RootFS.Layers, built.parts.map((p) => p.diffId));
  assert.equal(info.Id, built.loaded.imageId);
  assert.equal(info.Config.Entrypoint[0], '/usr/local/bin/node');
});

test('loadIntoEngine takes any Image: the layout, opened, streams in as a tarball, with none written to disk', async () => {
  const image = await openImage(layout);
  try {
    const loaded = await loadIntoEngine(image, ['iris:streamed'], new Docker({ socketPath: engine.socket }));
    assert.equal(loaded.imageId, built.loaded.imageId, 'the image --load put there');
    assert.ok(loaded.tags.includes('iris:streamed'), JSON.stringify(loaded));
  } finally {
    await image.close();
  }
});

test('docker run --network none serves predictions through a bind-mounted Unix socket', async () => {
  const sockets = await tempDir('pyml-sockets-');
  const name = `pyml-test-${process.pid}`;
  const run = spawn('docker', ['run', '--rm', '--name', name, '--network', 'none', '-v', `${sockets}:/sockets`, 'iris:1.0.0', 'serve', '--socket', '/sockets/m.sock'], {
    env: { ...process.env, ...engine.env }, stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stdout = '';
  let stderr = '';
  run.stdout.on('data', (d) => (stdout += d));
  run.stderr.on('data', (d) => (stderr += d));
  try {
    const deadline = Date.now() + 60_000;
    while (!stdout.includes('"ready":true')) {
      if (run.exitCode !== null) throw new Error(`container exited ${run.exitCode}: ${stderr}`);
      if (Date.now() > deadline) throw new Error(`container not ready in 60 s: ${stdout}\n${stderr}`);
      await sleep(100);
    }
    const socket = path.join(sockets, 'm.sock');
    assert.ok((await stat(socket)).isSocket());
    const client = v2Client(socket);
    try {
      const res: Msg = await client.call('ModelInfer', {
        model_name: 'iris',
        inputs: [{ name: 'input', datatype: 'FP32', shape: [2, 4], contents: { fp32_contents: [5.1, 3.5, 1.4, 0.2, 6.7, 3.0, 5.2, 2.3] } }],
      });
      const byName = Object.fromEntries((res.outputs as Msg[]).map((o) => [o.name, o]));
      assert.deepEqual(byName.label.contents.int64_contents, ['0', '2'], 'setosa, virginica');
      const p = byName.probabilities.contents.fp32_contents as number[];
      assert.equal(p.length, 6);
      assert.ok(Math.abs(p[0] + p[1] + p[2] - 1) < 1e-4 && p[0] > 0.9 && p[5] > 0.5, `probabilities ${p}`);
    } finally {
      client.close();
    }
  } finally {
    await docker(['rm', '-f', name]);
    await new Promise((resolve) => (run.exitCode !== null ? resolve(null) : run.once('exit', resolve)));
  }
});

test('pyml inspect image docker-daemon:NAME:TAG reads the image back from the engine', async () => {
  const r = await pyml(['inspect', 'image', 'docker-daemon:iris:1.0.0', '--verify', '--json'], { env: engine.env });
  assert.equal(r.code, 0, r.stderr);
  const d = parseJson<{ ref: string; name: string; verified: boolean; parts: { diffId: string }[]; signature: { outputs: { name: string }[] } }>(r);
  assert.equal(d.ref, 'docker-daemon:iris:1.0.0');
  assert.equal(d.name, 'iris');
  assert.equal(d.verified, true);
  assert.deepEqual(d.parts.map((p) => p.diffId), built.parts.map((p) => p.diffId), 'docker save gives back the same layers');
  assert.deepEqual(d.signature.outputs.map((o) => o.name).sort(), ['label', 'probabilities']);
});

test('pyml predict docker-daemon:NAME:TAG runs the engine\'s image, saved once into the cache by its digest', async () => {
  const sample = path.join(REPO, 'examples/onnx-iris/sample.json');
  const cache = await tempDir('pyml-engine-cache-');
  const fromLayout = await pyml(['predict', layout, '--input', sample, '--json']);
  assert.equal(fromLayout.code, 0, fromLayout.stderr);
  for (let run = 0; run < 2; run++) {
    const r = await pyml(['predict', 'docker-daemon:iris:1.0.0', '--input', sample], { env: { ...engine.env, PYML_CACHE_DIR: cache } });
    assert.equal(r.code, 0, r.stderr);
    assert.deepEqual(JSON.parse(r.stdout).outputs, parseJson<{ outputs: unknown }>(fromLayout).outputs);
    assert.match(r.stderr, /saved docker-daemon:iris:1\.0\.0 \(sha256:[0-9a-f]{64}\) from the engine/);
  }
  // Saved twice, kept once: the tarball is named by the image's digest.
  const kept = (await readdir(path.join(cache, 'pulled'))).filter((n) => !n.startsWith('.'));
  assert.equal(kept.length, 1, kept.join(', '));
  assert.match(kept[0], /^[0-9a-f]{64}\.tar$/);
  const missing = await pyml(['predict', 'docker-daemon:nothing:here', '--input', sample], { env: engine.env });
  assert.equal(missing.code, 1);
  assert.match(missing.stderr, /cannot read docker-daemon:nothing:here: .*has no image nothing:here/);
});

test('an image the engine does not have, and an engine that is not there, are clear errors', async () => {
  const missing = await pyml(['inspect', 'image', 'docker-daemon:nothing:here'], { env: engine.env });
  assert.equal(missing.code, 1);
  assert.match(missing.stderr, /has no image nothing:here/);
  const noEngine = await pyml(['inspect', 'image', 'docker-daemon:iris:1.0.0'], { env: { DOCKER_HOST: 'unix:///tmp/pyml-no-such-engine.sock' } });
  assert.equal(noEngine.code, 1);
  assert.match(noEngine.stderr, /no Docker engine at unix:\/\/\/tmp\/pyml-no-such-engine\.sock/);
});

test.run();
