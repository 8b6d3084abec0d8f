import { fileURLToPath } from 'node:url';
import { parseCommandArgs } from '../args.ts';
import { didYouMean, EXIT, PymlError } from '@pyml/errors';
import {
  kubernetesObjects, readResourcesFile, resolveModelImage, resolveServeImage, writeManifests,
  type Format, type Layout, type ModelImage, type ResourcesFile,
} from '@pyml/deploy';
import { printJson, showProgress, usage } from '../output.ts';
import { Progress } from '../progress.ts';

/** The program of the pyml-serve image, bundled by buildServeImage. */
const SERVE_FRONT = fileURLToPath(new URL(import.meta.url.endsWith('.ts') ? '../serve-front.ts' : '../serve-front.js', import.meta.url));

export const help = `Usage: pyml deploy k8s REF... --out DIR --serve-image REPO@sha256:DIGEST [options]
       pyml deploy serve-image --out LAYOUT [--tar FILE] [--json]

Writes Kubernetes manifests that run the images: a Deployment whose pod holds the \`pyml serve\` front and one
container per model image (the image's own entrypoint, serving on a Unix socket in a shared in-memory emptyDir,
mode 0700, no ports), a Service (V2 gRPC on 8001, HTTP on 8000), readiness and liveness probes, resource
requests and limits, a HorizontalPodAutoscaler (CPU) and a PodDisruptionBudget. Every object is checked
against the Kubernetes API schema before anything is written. Images are always referenced by digest.

REF is one of:
  LAYOUT=REGISTRY/REPO[:TAG]      the OCI layout (or OCI tarball) you pushed there: the digest is the layout's
                                  manifest digest, the model name and sizing come from its pyml.json (no
                                  registry is contacted; the tag is not used)
  NAME=REGISTRY/REPO@sha256:…     a pushed image, model name given; nothing is read (NAME@VERSION=… names
                                  its version too)
  REGISTRY/REPO@sha256:…          a pushed image, read from the registry for its model name and sizing

Options:
  --out DIR                      where the manifests go (replaced as a whole; written under a temp name first)
  --serve-image REPO@sha256:…    image of the front: must have \`pyml\` (and \`node\`) on PATH (required); also
                                 LAYOUT=REGISTRY/REPO for a layout pushed there, like a model REF
  --format plain|kustomize       kustomize also writes kustomization.yaml (default plain)
  --layout pod|per-model         pod: one Deployment with every model (default); per-model: one Deployment,
                                 Service, HPA and PDB per model (front + that model), NAME-MODEL
  --name NAME                    base name of the objects (default: the model's name for one model, else pyml)
  --namespace NS                 metadata.namespace of every object (and the kustomization's namespace)
  --replicas N                   pods at least (the autoscaler's minimum; default 2)
  --max-replicas N               pods at most (default 10, at least --replicas)
  --cpu-utilization PCT          average CPU, in % of the requests, the autoscaler aims at (default 70)
  --split NAME=V:W,V:W...        for the front: share NAME's unversioned requests between its deployed versions
                                 by weight (a canary); several versions of one model name (from their pyml.json
                                 version) run as containers model-NAME-vVERSION of the same pod. Repeatable
  --version-policy POLICY        for the front: latest (default), pinned=VERSION, NAME:pinned=VERSION. Repeatable
  --resources FILE               YAML/JSON: front, default and per-model (models.NAME) requests/limits; they
                                 override the image's pyml.json deploy.resources and the defaults
  --json                         print one JSON object
  -h, --help                     show this help

pyml deploy serve-image builds that front image: this machine's node (the base layer model images get too) and
\`pyml serve\` bundled into one file, \`pyml\` on PATH, user 65532. Push it, then pass it as --serve-image.

Examples:
  pyml deploy serve-image --out /tmp/pyml-serve && pyml push /tmp/pyml-serve registry.example.com/pyml-serve:0.1.0
  pyml push /tmp/iris registry.example.com/models/iris:1.0.0
  pyml deploy k8s /tmp/iris=registry.example.com/models/iris --serve-image /tmp/pyml-serve=registry.example.com/pyml-serve --out k8s/
  kubectl apply -f k8s/
`;

export async function run(args: string[]): Promise<number> {
  const { values, positionals } = parseCommandArgs('deploy', {
    args, allowPositionals: true,
    options: {
      out: { type: 'string' },
      'serve-image': { type: 'string' },
      format: { type: 'string', default: 'plain' },
      layout: { type: 'string', default: 'pod' },
      name: { type: 'string' },
      namespace: { type: 'string' },
      replicas: { type: 'string', default: '2' },
      'max-replicas': { type: 'string' },
      'cpu-utilization': { type: 'string', default: '70' },
      split: { type: 'string', multiple: true, default: [] },
      'version-policy': { type: 'string', multiple: true, default: [] },
      resources: { type: 'string' },
      tar: { type: 'string' },
      json: { type: 'boolean', default: false },
      help: { type: 'boolean', short: 'h' },
    },
  });
  if (values.help) { process.stdout.write(help); return EXIT.ok; }
  const [target, ...refs] = positionals;
  if (target === 'serve-image') return serveImage(refs, values.out, values.tar, values.json!);
  if (target === undefined) throw usage('usage: pyml deploy k8s REF... --out DIR --serve-image REPO@sha256:…');
  if (target !== 'k8s') throw usage(`pyml deploy knows k8s and serve-image; got '${target}'`, didYouMean(target, ['k8s', 'serve-image']));
  if (refs.length === 0) throw usage('pyml deploy k8s needs at least one REF (LAYOUT=REGISTRY/REPO, NAME=REGISTRY/REPO@sha256:…, or REGISTRY/REPO@sha256:…)');
  if (!values.out) throw usage('pyml deploy k8s needs --out DIR');
  if (!values['serve-image']) throw usage('pyml deploy k8s needs --serve-image REPO@sha256:… (an image with pyml on PATH, for the front container)');
  const format = values.format as Format;
  if (format !== 'plain' && format !== 'kustomize') throw usage(`--format must be plain or kustomize, got '${values.format}'`);
  const layout = values.layout as Layout;
  if (layout !== 'pod' && layout !== 'per-model') throw usage(`--layout must be pod or per-model, got '${values.layout}'`);
  const replicas = integer(values.replicas!, '--replicas', 1);
  const maxReplicas = values['max-replicas'] === undefined ? Math.max(10, replicas) : integer(values['max-replicas'], '--max-replicas', 1);
  const cpuUtilization = integer(values['cpu-utilization']!, '--cpu-utilization', 1);

  let frontImage: string;
  let resources: ResourcesFile | undefined;
  const models: ModelImage[] = [];
  try {
    frontImage = await resolveServeImage(values['serve-image']);
    resources = values.resources ? await readResourcesFile(values.resources) : undefined;
    // Registry reads are loaded only when a bare digest ref needs one.
    const openRemote = async (ref: string) => (await import('@pyml/registry/open-any-image')).openAnyImage(ref);
    for (const ref of refs) models.push(await resolveModelImage(ref, openRemote));
  } catch (error) {
    throw new PymlError((error as Error).message, EXIT.usage);
  }
  const name = values.name ?? (new Set(models.map((m) => m.name)).size === 1 ? models[0].name.toLowerCase().replace(/[^a-z0-9-]+/g, '-') : 'pyml');
  let written;
  try {
    const objects = kubernetesObjects(models, { name, namespace: values.namespace, serveImage: frontImage, layout, replicas, maxReplicas, cpuUtilization, resources, splits: values.split, versionPolicies: values['version-policy'] });
    written = await writeManifests(values.out, objects, { format, namespace: values.namespace });
  } catch (error) {
    throw new PymlError((error as Error).message);
  }
  const summary = { ok: true, out: values.out, format, layout, serveImage: frontImage, models: models.map((m) => ({ name: m.name, ...(m.version ? { version: m.version } : {}), image: m.image, from: m.from })), files: written };
  if (values.json) {
    printJson(summary);
    return EXIT.ok;
  }
  process.stdout.write(`wrote ${written.length} files to ${values.out} (${layout} layout, ${format})\n`);
  for (const m of models) process.stdout.write(`  ${m.name.padEnd(20)} ${m.image}\n`);
  for (const f of written) process.stdout.write(`  ${f.file}${f.kind ? `  (${f.kind} ${f.name})` : ''}\n`);
  process.stdout.write(`apply with: kubectl apply ${format === 'kustomize' ? '-k' : '-f'} ${values.out}\n`);
  return EXIT.ok;
}

async function serveImage(extra: string[], out: string | undefined, tar: string | undefined, json: boolean): Promise<number> {
  if (extra.length) throw usage(`pyml deploy serve-image takes no REF, got ${extra.join(' ')}`);
  if (!out) throw usage('pyml deploy serve-image needs --out LAYOUT');
  const { buildServeImage } = await import('@pyml/deploy/serve-image');
  const progress = new Progress(showProgress({ json }));
  let built;
  try {
    built = await buildServeImage({ out, tar, frontEntry: SERVE_FRONT, log: (m) => progress.step(m) });
  } catch (error) {
    throw new PymlError(`building the serve image: ${(error as Error).message}`);
  } finally {
    progress.clear();
  }
  if (json) printJson({ ok: true, ...built });
  else process.stdout.write(`built ${built.refName}\n  digest  ${built.digest}\n  layout  ${built.layout}${built.tar ? `\n  tar     ${built.tar}` : ''}\npush it, then: pyml deploy k8s … --serve-image ${built.layout}=REGISTRY/pyml-serve\n`);
  return EXIT.ok;
}

function integer(value: string, flag: string, min: number): number {
  const n = Number(value);
  if (!Number.isSafeInteger(n) || n < min) throw usage(`${flag} must be an integer ≥ ${min}, got '${value}'`);
  return n;
}
