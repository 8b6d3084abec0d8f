import { randomBytes } from 'node:crypto';
import { mkdir, readdir, rename, rm, stat, writeFile } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import yaml from 'js-yaml';
import type { KubernetesObject } from './kubernetes-manifests.ts';

export type Format = 'plain' | 'kustomize';

export interface WrittenFile {
  file: string;
  kind?: string;
  name?: string;
}

const KIND_FILE: Record<string, string> = {
  Deployment: 'deployment', Service: 'service', HorizontalPodAutoscaler: 'hpa', PodDisruptionBudget: 'pdb',
};

/** YAML as kubectl writes it: block style, no anchors, long strings unwrapped. */
export function toYaml(value: unknown): string {
  return yaml.dump(value, { noRefs: true, lineWidth: -1, quotingType: '"' });
}

/**
 * Writes one file per object (`deployment-NAME.yaml`, …) and, for kustomize, a kustomization.yaml listing them.
 * The directory is written under a temp name beside DIR and renamed into place, so a failure leaves DIR as it was.
 * An existing DIR is replaced only if it holds nothing but YAML (a previous output): it is never merged into.
 */
export async function writeManifests(dir: string, objects: KubernetesObject[], opts: { format: Format; namespace?: string }): Promise<WrittenFile[]> {
  const files: { file: string; text: string; kind?: string; name?: string }[] = objects.map((o) => {
    const json = o.toJSON() as { kind: string; metadata: { name: string } };
    return { file: `${KIND_FILE[json.kind] ?? json.kind.toLowerCase()}-${json.metadata.name}.yaml`, text: toYaml(json), kind: json.kind, name: json.metadata.name };
  });
  if (opts.format === 'kustomize') {
    const kustomization = {
      apiVersion: 'kustomize.config.k8s.io/v1beta1',
      kind: 'Kustomization',
      ...(opts.namespace ? { namespace: opts.namespace } : {}),
      resources: files.map((f) => f.file),
    };
    files.push({ file: 'kustomization.yaml', text: toYaml(kustomization) });
  }
  const existing = await stat(dir).catch(() => undefined);
  if (existing && !existing.isDirectory()) throw new Error(`--out ${dir} exists and is not a directory`);
  if (existing) {
    const foreign = (await readdir(dir)).filter((f) => !/\.ya?ml$/.test(f));
    if (foreign.length) throw new Error(`--out ${dir} holds files that are not manifests (${foreign.slice(0, 3).join(', ')}${foreign.length > 3 ? ', …' : ''}); give an empty or new directory`);
  }
  const parent = dirname(dir);
  await mkdir(parent, { recursive: true });
  const suffix = `${process.pid}-${randomBytes(4).toString('hex')}`;
  const temp = join(parent, `.${basename(dir)}.tmp-${suffix}`);
  const old = join(parent, `.${basename(dir)}.old-${suffix}`);
  try {
    await mkdir(temp);
    for (const f of files) await writeFile(join(temp, f.file), f.text);
    if (existing) await rename(dir, old);
    await rename(temp, dir);
  } catch (error) {
    await rm(temp, { recursive: true, force: true });
    throw error;
  }
  if (existing) await rm(old, { recursive: true, force: true });
  return files.map(({ file, kind, name }) => ({ file: join(dir, file), ...(kind ? { kind, name } : {}) }));
}
