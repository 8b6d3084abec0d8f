/**
 * docs/ci/pyml-ci.sh, the plain shell recipe of docs/ci.md, run as written against a real registry
 * (Debian's docker-registry on 127.0.0.1): a first build with no baseline pushes; a compatible change passes the
 * gate and pushes; a breaking signature change fails the job (exit 1) before anything is pushed.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { readFileSync } from 'node:fs';
import { rm } from 'node:fs/promises';
import path from 'node:path';
import { Ajv } from 'ajv';
import { PYML_BIN, REPO, runProcess } from '../helpers/cli.ts';
import { copyExample, editFile, tempDir } from '../helpers/project.ts';
import { startRegistry, type RegistryServer } from '../helpers/registry-server.ts';
import { requireTool } from '../helpers/tools.ts';

const SCRIPT = path.join(REPO, 'docs', 'ci', 'pyml-ci.sh');
const ajv = new Ajv({ allErrors: true, strict: true });
const validate = {
  build: ajv.compile(JSON.parse(readFileSync(path.join(REPO, 'schemas', 'build-output.schema.json'), 'utf8'))),
  inspect: ajv.compile(JSON.parse(readFileSync(path.join(REPO, 'schemas', 'inspect-output.schema.json'), 'utf8'))),
};

let registry: RegistryServer;
const cleanup: string[] = [];

test.before(async () => {
  requireTool('bash');
  registry = await startRegistry();
});
test.after(async () => {
  await registry?.stop();
  for (const d of cleanup) await rm(d, { recursive: true, force: true });
});

async function ci(project: string, env: Record<string, string>) {
  const out = await tempDir('pyml-ci-out-');
  cleanup.push(out);
  const r = await runProcess('bash', [SCRIPT], { cwd: project, env: { PROJECT: project, OUT: out, PYML: `${process.execPath} ${PYML_BIN}`, ...env } });
  return { ...r, out, json: (name: string) => JSON.parse(readFileSync(path.join(out, name), 'utf8')) as Record<string, unknown> };
}

async function tagExists(repo: string, tag: string): Promise<boolean> {
  const res = await fetch(`${registry.url}/v2/${repo}/manifests/${tag}`, { method: 'HEAD', headers: { accept: 'application/vnd.oci.image.manifest.v1+json' } });
  return res.status === 200;
}

test('first build: no baseline yet, verified, reports match the schemas, pushed to both tags', async () => {
  const project = await copyExample('onnx-iris');
  cleanup.push(project);
  const r = await ci(project, { BASELINE_REF: `${registry.host}/iris:main`, PUSH_REFS: `${registry.host}/iris:1.0.0 ${registry.host}/iris:main` });
  assert.is(r.code, 0, r.stderr);
  assert.match(r.stderr, /no baseline at .*iris:main yet/);
  const build = r.json('build.json');
  assert.ok(validate.build(build), ajv.errorsText(validate.build.errors));
  const inspect = r.json('inspect.json');
  assert.ok(validate.inspect(inspect), ajv.errorsText(validate.inspect.errors));
  assert.is(inspect.verified, true);
  assert.ok(await tagExists('iris', '1.0.0'));
  assert.ok(await tagExists('iris', 'main'));
});

test('a compatible change passes the gate and pushes', async () => {
  const project = await copyExample('onnx-iris');
  cleanup.push(project);
  await editFile(path.join(project, 'pyml.config.ts'), (t) => t.replace("version: '1.0.0'", "version: '1.1.0'"));
  const r = await ci(project, { BASELINE_REF: `${registry.host}/iris:main`, PUSH_REFS: `${registry.host}/iris:1.1.0 ${registry.host}/iris:main` });
  assert.is(r.code, 0, r.stderr);
  const diff = r.json('diff.json') as { breaking: boolean; parts: { part: string; status: string }[] };
  assert.is(diff.breaking, false);
  assert.equal(diff.parts.filter((p) => p.status !== 'unchanged').map((p) => p.part), ['entrypoint']);
  assert.ok(await tagExists('iris', '1.1.0'));
  // pyml diff also reads registry images directly: the pushed :1.0.0 against this run's layout.
  const direct = await runProcess(process.execPath, [PYML_BIN, 'diff', `${registry.host}/iris:1.0.0`, path.join(r.out, 'image'), '--json', '--fail-on', 'breaking']);
  assert.is(direct.code, 0, direct.stderr);
  assert.is((JSON.parse(direct.stdout) as { breaking: boolean }).breaking, false);
});

test('a breaking signature change fails the job with exit 1 and pushes nothing', async () => {
  const project = await copyExample('onnx-iris');
  cleanup.push(project);
  await editFile(path.join(project, 'pyml.config.ts'), (t) => t.replace("version: '1.0.0',",
    "version: '2.0.0',\n  signature: { inputs: [{ name: 'input', dtype: 'FP32', shape: [-1, 4] }], outputs: [{ name: 'probabilities', dtype: 'FP32', shape: [-1, 3] }] },"));
  const r = await ci(project, { BASELINE_REF: `${registry.host}/iris:main`, PUSH_REFS: `${registry.host}/iris:2.0.0` });
  assert.is(r.code, 1, r.stderr);
  assert.match(r.stderr, /breaking signature change/);
  const diff = r.json('diff.json') as { breaking: boolean; signature: { name: string; change: string }[] };
  assert.is(diff.breaking, true);
  assert.equal(diff.signature.map((c) => `${c.name}:${c.change}`), ['label:removed']);
  assert.not.ok(await tagExists('iris', '2.0.0'), 'nothing pushed');
});

test.run();
