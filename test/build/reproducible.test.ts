import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { rm } from 'node:fs/promises';
import path from 'node:path';
import { pyml, parseJson } from '../helpers/cli.ts';
import { copyExample, editFile, tempDir } from '../helpers/project.ts';

interface BuildJson { digest: string; parts: { part: string; digest: string; reused: boolean }[] }

const dirs: string[] = [];
test.after(async () => { for (const d of dirs) await rm(d, { recursive: true, force: true }); });

async function buildJson(project: string, out: string, env: Record<string, string> = {}): Promise<BuildJson> {
  const r = await pyml(['build', project, '--out', out, '--json'], { env });
  assert.is(r.code, 0, r.stderr);
  return parseJson<BuildJson>(r);
}

test('same project, twice and from a copy in another directory, gives the same manifest digest', async () => {
  const a = await copyExample('onnx-iris', 'pyml-a-');
  const b = await copyExample('onnx-iris', 'pyml-elsewhere-');
  const out = await tempDir();
  dirs.push(a, b, out);
  const first = await buildJson(a, `${out}/a1`);
  const second = await buildJson(a, `${out}/a2`);
  const copy = await buildJson(b, `${out}/b`);
  assert.is(second.digest, first.digest);
  assert.is(copy.digest, first.digest);
  // A fresh cache rebuilds every layer from scratch: still the same bytes.
  const cold = await buildJson(b, `${out}/cold`, { PYML_CACHE_DIR: `${out}/fresh-cache` });
  assert.is(cold.digest, first.digest);
  assert.ok(cold.parts.every((p) => !p.reused), 'a fresh cache reuses nothing');
});

test('SOURCE_DATE_EPOCH changes the timestamps, and so the digest, reproducibly', async () => {
  const a = await copyExample('onnx-iris');
  const out = await tempDir();
  dirs.push(a, out);
  const zero = await buildJson(a, `${out}/zero`);
  const dated = await buildJson(a, `${out}/dated`, { SOURCE_DATE_EPOCH: '1700000000' });
  const again = await buildJson(a, `${out}/again`, { SOURCE_DATE_EPOCH: '1700000000' });
  assert.is.not(dated.digest, zero.digest);
  assert.is(again.digest, dated.digest);
});

test('a code-only change rebuilds only the model and entrypoint layers', async () => {
  const project = await copyExample('onnx-iris');
  const out = await tempDir();
  dirs.push(project, out);
  const before = await buildJson(project, `${out}/1`);
  // A value no earlier run has built, so the shared blob cache cannot already hold the new model layer.
  const marker = `${process.pid}-${Date.now()}`;
  await editFile(path.join(project, 'src/model.ts'), (t) => `${t}\nexport const changedAt = '${marker}';\n`);
  const after = await buildJson(project, `${out}/2`);
  assert.is.not(after.digest, before.digest);
  const reused = Object.fromEntries(after.parts.map((p) => [p.part, p.reused]));
  assert.equal(reused, { base: true, deps: true, weights: true, model: false, entrypoint: false });
  const same = (part: string) => before.parts.find((p) => p.part === part)!.digest === after.parts.find((p) => p.part === part)!.digest;
  assert.ok(same('base') && same('deps') && same('weights'));
  assert.not.ok(same('model'));
});

test.run();
