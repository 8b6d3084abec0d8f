/**
 * `pyml build --json` and `pyml inspect image --json` against their JSON schemas (schemas/*-output.schema.json),
 * and `pyml diff` as a CI gate between real images built from copies of examples/onnx-iris.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { readFileSync } from 'node:fs';
import { rm } from 'node:fs/promises';
import path from 'node:path';
import { Ajv } from 'ajv';
import { pyml, parseJson, REPO } from '../helpers/cli.ts';
import { copyExample, editFile, tempDir } from '../helpers/project.ts';
import { diffSignature } from '@pyml/image/pyml-format';

const ajv = new Ajv({ allErrors: true, strict: true });
const schema = (name: string) => ajv.compile(JSON.parse(readFileSync(path.join(REPO, 'schemas', name), 'utf8')));
const validateBuild = schema('build-output.schema.json');
const validateInspect = schema('inspect-output.schema.json');
const validateDiff = schema('diff-output.schema.json');

function assertValid(validate: ReturnType<typeof schema>, value: unknown, what: string): void {
  if (!validate(value)) assert.unreachable(`${what} does not match its schema: ${ajv.errorsText(validate.errors)}`);
}

const cleanup: string[] = [];
let out: string;
let imageA: string;
let imageB: string;
let imageC: string;

test.before(async () => {
  out = await tempDir('pyml-diff-');
  cleanup.push(out);
});
test.after(async () => { for (const d of cleanup) await rm(d, { recursive: true, force: true }); });

test('build --json matches schemas/build-output.schema.json (with and without --tar)', async () => {
  const project = await copyExample('onnx-iris');
  cleanup.push(project);
  imageA = path.join(out, 'a');
  const r = await pyml(['build', project, '--out', imageA, '--tar', path.join(out, 'a.tar'), '--json']);
  assert.is(r.code, 0, r.stderr);
  const json = parseJson(r);
  assertValid(validateBuild, json, 'build --json');
  assert.is(json.tar, path.join(out, 'a.tar'));

  // A code-only change: version bump. Same signature, new entrypoint part.
  const projectB = await copyExample('onnx-iris');
  cleanup.push(projectB);
  await editFile(path.join(projectB, 'pyml.config.ts'), (t) => t.replace("version: '1.0.0'", "version: '1.0.1'"));
  imageB = path.join(out, 'b');
  const rb = await pyml(['build', projectB, '--out', imageB, '--json']);
  assert.is(rb.code, 0, rb.stderr);
  assertValid(validateBuild, parseJson(rb), 'build --json (b)');

  // A breaking change: the declared signature leaves out the `label` output.
  const projectC = await copyExample('onnx-iris');
  cleanup.push(projectC);
  await editFile(path.join(projectC, 'pyml.config.ts'), (t) => t.replace("version: '1.0.0',",
    "version: '2.0.0',\n  signature: { inputs: [{ name: 'input', dtype: 'FP32', shape: [-1, 4] }], outputs: [{ name: 'probabilities', dtype: 'FP32', shape: [-1, 3] }] },"));
  imageC = path.join(out, 'c');
  const rc = await pyml(['build', projectC, '--out', imageC, '--json']);
  assert.is(rc.code, 0, rc.stderr);
});

test('build --json failure output matches the schema too', async () => {
  const empty = await tempDir('pyml-empty-');
  cleanup.push(empty);
  const r = await pyml(['build', empty, '--json']);
  assert.is(r.code, 2);
  const json = parseJson(r);
  assertValid(validateBuild, json, 'build --json failure');
  assert.is(json.ok, false);
});

test('inspect image --json (layout, tarball, --verify) matches schemas/inspect-output.schema.json', async () => {
  for (const ref of [imageA, path.join(out, 'a.tar')]) {
    const r = await pyml(['inspect', 'image', ref, '--json', '--verify']);
    assert.is(r.code, 0, r.stderr);
    const json = parseJson(r);
    assertValid(validateInspect, json, `inspect --json ${ref}`);
    assert.is(json.verified, true);
  }
  const missing = await pyml(['inspect', 'image', path.join(out, 'nope'), '--json']);
  assert.is(missing.code, 2, 'a missing image is bad input');
  assertValid(validateInspect, parseJson(missing), 'inspect --json failure');
});

test('diff: the same image is identical, exit 0 even with --fail-on any', async () => {
  const r = await pyml(['diff', imageA, path.join(out, 'a.tar'), '--json', '--fail-on', 'any']);
  assert.is(r.code, 0, r.stderr);
  const json = parseJson<{ identical: boolean; breaking: boolean }>(r);
  assertValid(validateDiff, json, 'diff --json (identical)');
  assert.ok(json.identical, 'a layout and a tarball of the same image have the same manifest digest');
  assert.is(json.breaking, false);
});

test('diff: a version bump changes the entrypoint part only, not the signature; --fail-on breaking passes', async () => {
  const r = await pyml(['diff', imageA, imageB, '--json', '--fail-on', 'breaking']);
  assert.is(r.code, 0, r.stderr);
  const json = parseJson<{ parts: { part: string; status: string }[]; signature: unknown[]; breaking: boolean; identical: boolean }>(r);
  assertValid(validateDiff, json, 'diff --json (version bump)');
  assert.is(json.identical, false);
  const changed = json.parts.filter((p) => p.status !== 'unchanged').map((p) => p.part);
  assert.equal(changed, ['entrypoint']);
  assert.equal(json.signature, []);
  assert.is(json.breaking, false);
  const any = await pyml(['diff', imageA, imageB, '--fail-on', 'any']);
  assert.is(any.code, 1, 'any difference fails --fail-on any');
});

test('diff: a removed output is breaking; --fail-on breaking exits 1 and says so on stderr', async () => {
  const text = await pyml(['diff', imageA, imageC]);
  assert.is(text.code, 0, 'without --fail-on, diff only reports');
  assert.match(text.stdout, /output label\s+removed/);
  assert.match(text.stdout, /BREAKING/);
  const gate = await pyml(['diff', imageA, imageC, '--fail-on', 'breaking', '--json']);
  assert.is(gate.code, 1);
  assert.match(gate.stderr, /breaking signature change/);
  const json = parseJson<{ ok: boolean; breaking: boolean; signature: { side: string; name: string; change: string; breaking: boolean }[] }>(gate);
  assertValid(validateDiff, json, 'diff --json (breaking)');
  assert.is(json.ok, false);
  assert.is(json.breaking, true);
  assert.equal(json.signature.map((c) => [c.side, c.name, c.change, c.breaking]), [['output', 'label', 'removed', true]]);
  // The other way round, the output is added: compatible.
  const back = await pyml(['diff', imageC, imageA, '--fail-on', 'breaking']);
  assert.is(back.code, 0, back.stdout + back.stderr);
});

test('diff: usage errors exit 2', async () => {
  const one = await pyml(['diff', imageA, '--json']);
  assert.is(one.code, 2);
  assertValid(validateDiff, parseJson(one), 'diff --json (usage error)');
  const bad = await pyml(['diff', imageA, imageB, '--fail-on', 'sometimes']);
  assert.is(bad.code, 2);
  assert.match(bad.stderr, /--fail-on must be one of breaking, signature, any/);
});

test('diffSignature: the rules for breaking changes', () => {
  const sig = (inputs: [string, string, number[]][], outputs: [string, string, number[]][] = []) => ({
    inputs: inputs.map(([name, dtype, shape]) => ({ name, dtype, shape })),
    outputs: outputs.map(([name, dtype, shape]) => ({ name, dtype, shape })),
  }) as Parameters<typeof diffSignature>[0];
  const verdicts = (a: ReturnType<typeof sig>, b: ReturnType<typeof sig>) => diffSignature(a, b).map((c) => `${c.side}:${c.name}:${c.change}:${c.breaking}`);
  const base = sig([['x', 'FP32', [-1, 4]]], [['y', 'FP32', [-1, 3]]]);
  assert.equal(verdicts(base, base), []);
  assert.equal(verdicts(base, sig([['x', 'FP64', [-1, 4]]], [['y', 'FP32', [-1, 3]]])), ['input:x:dtype:true']);
  assert.equal(verdicts(base, sig([['x', 'FP32', [-1, 5]]], [['y', 'FP32', [-1, 3]]])), ['input:x:shape:true'], 'a fixed dim changed');
  assert.equal(verdicts(base, sig([['x', 'FP32', [-1, -1]]], [['y', 'FP32', [-1, 3]]])), ['input:x:shape:false'], 'fixed → free accepts more');
  assert.equal(verdicts(base, sig([['x', 'FP32', [8, 4]]], [['y', 'FP32', [-1, 3]]])), ['input:x:shape:true'], 'free → fixed accepts less');
  assert.equal(verdicts(base, sig([['x', 'FP32', [-1, 4, 1]]], [['y', 'FP32', [-1, 3]]])), ['input:x:shape:true'], 'rank');
  assert.equal(verdicts(base, sig([['z', 'FP32', [-1, 4]]], [['y', 'FP32', [-1, 3]]])), ['input:x:removed:true', 'input:z:added:true'], 'rename');
  assert.equal(verdicts(base, sig([['x', 'FP32', [-1, 4]]], [['y', 'FP32', [-1, 3]], ['p', 'FP32', [-1]]])), ['output:p:added:false']);
  assert.equal(verdicts(base, sig([['x', 'FP32', [-1, 4]]], [['y', 'FP32', [-1, -1]]])), ['output:y:shape:true'], 'output fixed → free');
});

test.run();
