import assert from 'node:assert/strict';
import { readdir, readFile } from 'node:fs/promises';
import path from 'node:path';
import yaml from 'js-yaml';
import { Deployment } from 'kubernetes-models/apps/v1/Deployment';
import { HorizontalPodAutoscaler } from 'kubernetes-models/autoscaling/v2/HorizontalPodAutoscaler';
import { PodDisruptionBudget } from 'kubernetes-models/policy/v1/PodDisruptionBudget';
import { Service } from 'kubernetes-models/v1/Service';
import { parseJson, pyml } from '../helpers/cli.ts';
import { copyExample, editFile, tempDir } from '../helpers/project.ts';

export const SERVE_IMAGE = `127.0.0.1:5000/pyml-serve@sha256:${'b'.repeat(64)}`;
export const DIGEST_REF = /^[^@\s]+@sha256:[0-9a-f]{64}$/;

export interface BuiltImage { layout: string; digest: string; project: string }

/** Builds examples/onnx-iris into a fresh layout; `edit` changes the model code first (a new version, a new digest). */
export async function buildIris(edit?: string): Promise<BuiltImage> {
  const project = await copyExample('onnx-iris');
  if (edit) await editFile(path.join(project, 'src/model.ts'), (t) => `${t}\nexport const revision = ${JSON.stringify(edit)};\n`);
  const layout = path.join(await tempDir('pyml-deploy-image-'), 'layout');
  const r = await pyml(['build', project, '--out', layout, '--json']);
  assert.equal(r.code, 0, r.stderr);
  return { layout, digest: parseJson<{ digest: string }>(r).digest, project };
}

/** The API models the objects are checked with: the library's schema validation, not ours. */
const MODELS = { Deployment, Service, HorizontalPodAutoscaler, PodDisruptionBudget } as const;

export interface Written {
  dir: string;
  /** Every object of every YAML file, by file name, each re-read from disk and validated. */
  files: Record<string, Record<string, any>[]>; // eslint-disable-line @typescript-eslint/no-explicit-any
  /** The API objects (everything but kustomization.yaml). */
  objects: Record<string, any>[]; // eslint-disable-line @typescript-eslint/no-explicit-any
}

/** Reads back what `pyml deploy k8s` wrote, and validates each object against the Kubernetes API schema. */
export async function readWritten(dir: string): Promise<Written> {
  const files: Written['files'] = {};
  const objects: Written['objects'] = [];
  for (const file of (await readdir(dir)).sort()) {
    const docs = yaml.loadAll(await readFile(path.join(dir, file), 'utf8')) as Record<string, any>[]; // eslint-disable-line @typescript-eslint/no-explicit-any
    files[file] = docs;
    for (const doc of docs) {
      if (doc.kind === 'Kustomization') continue;
      const Model = MODELS[doc.kind as keyof typeof MODELS];
      assert.ok(Model, `${file}: unexpected kind ${doc.kind}`);
      const typed = new Model(doc as never);
      assert.equal(typed.apiVersion, doc.apiVersion, `${file}: apiVersion ${doc.apiVersion} is the one the model knows`);
      typed.validate(); // throws naming the field when the object breaks the schema
      objects.push(doc);
    }
  }
  return { dir, files, objects };
}

export async function deploy(args: string[]): Promise<{ code: number; stdout: string; stderr: string; out: string }> {
  const out = path.join(await tempDir('pyml-deploy-out-'), 'k8s');
  const r = await pyml(['deploy', 'k8s', ...args, '--out', out]);
  return { ...r, out };
}
