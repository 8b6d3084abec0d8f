import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { mkdir, readdir, rm, stat, symlink, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { pyml, parseJson } from '../helpers/cli.ts';
import { copyExample, editFile, tempDir } from '../helpers/project.ts';

interface BuildJson { digest: string; parts: { part: string; digest: string; mediaType: string; reused: boolean }[] }

const TAR = 'application/vnd.oci.image.layer.v1.tar';
const TAR_GZIP = 'application/vnd.oci.image.layer.v1.tar+gzip';

let project: string;
let work: string;
let cache: string;

test.before(async () => {
  project = await copyExample('onnx-iris');
  work = await tempDir();
  // Its own cache: the test reads what the build keeps there.
  cache = path.join(work, 'cache');
  // The model imports a second module of the project, whose edits must reach the bundle too.
  await writeFile(path.join(project, 'src/labels.ts'), "export const LABELS = ['setosa', 'versicolor', 'virginica'];\n");
  await editFile(path.join(project, 'src/model.ts'), (t) => `import { LABELS } from './labels.ts';\n${t}\nexport const labels = LABELS;\n`);
});

test.after(async () => {
  await rm(project, { recursive: true, force: true });
  await rm(work, { recursive: true, force: true });
});

async function buildJson(out: string, env: Record<string, string> = {}): Promise<BuildJson> {
  const r = await pyml(['build', project, '--out', path.join(work, out), '--json'], { env: { PYML_CACHE_DIR: cache, ...env } });
  assert.is(r.code, 0, r.stderr);
  return parseJson<BuildJson>(r);
}

const partOf = (b: BuildJson, part: string) => b.parts.find((p) => p.part === part)!;

/** The model bundles the cache keeps, with their modification times. */
async function modelBundles(): Promise<Map<string, number>> {
  const dir = path.join(cache, 'bundles');
  const names = (await readdir(dir)).filter((n) => n.startsWith('model-') && n.endsWith('.json'));
  return new Map(await Promise.all(names.map(async (n) => [n, (await stat(path.join(dir, n))).mtimeMs] as const)));
}

let first: BuildJson;

test('base and dependency layers are stored as plain tar; model code and entrypoint as gzip', async () => {
  first = await buildJson('first');
  assert.is(partOf(first, 'base').mediaType, TAR);
  assert.is(partOf(first, 'deps').mediaType, TAR);
  assert.is(partOf(first, 'model').mediaType, TAR_GZIP);
  assert.is(partOf(first, 'entrypoint').mediaType, TAR_GZIP);
  assert.ok(first.parts.every((p) => !p.reused), 'a new cache reuses nothing');
});

test('an unchanged rebuild reuses every layer and the model bundle, and runs no ldd (there is none on its PATH)', async () => {
  const bundles = await modelBundles();
  assert.is(bundles.size, 1, 'one model bundle is cached');
  // A PATH with node alone: a rebuild that ran ldd (the base's or the deps' libraries) would fail.
  const bin = path.join(work, 'bin-without-ldd');
  await mkdir(bin, { recursive: true });
  await symlink(process.execPath, path.join(bin, 'node'));
  const again = await buildJson('again', { PATH: bin });
  assert.is(again.digest, first.digest);
  assert.ok(again.parts.every((p) => p.reused), `every part reused: ${JSON.stringify(again.parts.map((p) => [p.part, p.reused]))}`);
  assert.equal(await modelBundles(), bundles, 'the cached model bundle was used, not rewritten');
});

test('editing a module the model imports rebuilds the bundle and only the model and entrypoint layers', async () => {
  await editFile(path.join(project, 'src/labels.ts'), (t) => t.replace("'virginica'", `'virginica-${process.pid}-${Date.now()}'`));
  const edited = await buildJson('edited');
  assert.is.not(edited.digest, first.digest);
  assert.is.not(partOf(edited, 'model').digest, partOf(first, 'model').digest);
  const reused = Object.fromEntries(edited.parts.map((p) => [p.part, p.reused]));
  assert.equal(reused, { base: true, deps: true, weights: true, model: false, entrypoint: false });
  // And back: the same sources give the same model layer again.
  await editFile(path.join(project, 'src/labels.ts'), (t) => t.replace(/'virginica-[^']*'/, "'virginica'"));
  const back = await buildJson('back');
  assert.is(back.digest, first.digest);
});

test.run();
