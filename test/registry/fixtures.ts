import { appendFile } from 'node:fs/promises';
import path from 'node:path';
import { parseJson, pyml, runProcess } from '../helpers/cli.ts';
import { copyExample, tempDir } from '../helpers/project.ts';

export interface BuiltImage {
  project: string;
  layout: string;
  tar?: string;
  digest: string;
  parts: { part: string; digest: string; diffId: string; size: number; mediaType: string }[];
}

/** Builds the iris example (a fresh copy) into a layout, optionally with a tarball. */
export async function buildIris(options: { project?: string; tar?: boolean; extraArgs?: string[]; env?: Record<string, string> } = {}): Promise<BuiltImage & Record<string, unknown>> {
  const project = options.project ?? await copyExample('onnx-iris');
  const out = await tempDir('pyml-registry-layout-');
  const layout = path.join(out, 'image');
  const tar = options.tar ? path.join(out, 'image.tar') : undefined;
  const r = await pyml(['build', project, '--out', layout, ...(tar ? ['--tar', tar] : []), ...(options.extraArgs ?? []), '--json'], { env: options.env });
  if (r.code !== 0) throw new Error(`build failed (${r.code}): ${r.stderr}`);
  const result = parseJson<BuiltImage & Record<string, unknown>>(r);
  return { ...result, project, layout, tar };
}

/** A change to the model's code only: deps, weights and base stay byte for byte the same. */
export async function changeCode(project: string, marker: string): Promise<void> {
  await appendFile(path.join(project, 'src/model.ts'), `\nexport const revision = ${JSON.stringify(marker)};\n`);
}

export interface SkopeoInspect {
  Digest: string;
  Layers: string[];
  Name: string;
}

export async function skopeoInspect(ref: string, creds?: string): Promise<SkopeoInspect> {
  const r = await runProcess('skopeo', ['inspect', '--tls-verify=false', ...(creds ? ['--creds', creds] : []), `docker://${ref}`]);
  if (r.code !== 0) throw new Error(`skopeo inspect docker://${ref} failed (${r.code}): ${r.stderr}`);
  return JSON.parse(r.stdout) as SkopeoInspect;
}

/** Whether the registry has a manifest for REPO:TAG, asked directly over HTTP (not through our client). */
export async function manifestStatus(registryUrl: string, repository: string, tag: string, authorization?: string): Promise<number> {
  const res = await fetch(`${registryUrl}/v2/${repository}/manifests/${tag}`, {
    method: 'HEAD',
    headers: { Accept: 'application/vnd.oci.image.manifest.v1+json', ...(authorization ? { Authorization: authorization } : {}) },
  });
  return res.status;
}
