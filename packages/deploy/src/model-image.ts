import { stat } from 'node:fs/promises';
import { type OpenedImage } from '@pyml/image';
import { MANIFEST_PATH, requirePymlManifest } from '@pyml/image/pyml-format';
import { DIGEST, digestReference, parseImageName, requireDigestReference } from './image-reference.ts';
import { openLayoutImage } from './layout-image.ts';
import { checkRequirements, type ResourceRequirements } from './resources.ts';

/** One model to deploy: the routing name, the image pinned by digest, and what its pyml.json says about sizing. */
export interface ModelImage {
  /** The model's name as its image serves it: the front routes by it and names its socket after it. */
  name: string;
  /** The model's version (pyml.json `version`, or NAME@VERSION on the command line): versions of one name are served side by side. */
  version?: string;
  /** `REGISTRY/REPOSITORY@sha256:…`: the only form written into manifests. */
  image: string;
  digest: string;
  /** Bytes of weights, from pyml.json: sizes the default memory request. */
  weightsBytes?: number;
  /** `deploy.resources` from the image's pyml.json, when the build recorded one. */
  resources?: ResourceRequirements;
  /** Where the name and digest came from: a layout path, a registry, or the command line. */
  from: string;
}

/** Opens a registry image (e.g. @pyml/registry's openAnyImage); passed in so this package reads OCI files only. */
export type OpenRemoteImage = (ref: string) => Promise<OpenedImage>;

const MODEL_NAME = /^[A-Za-z0-9][A-Za-z0-9_.-]{0,62}$/;
const MODEL_VERSION = /^[A-Za-z0-9][A-Za-z0-9_.+-]{0,62}$/;

/**
 * Resolves one REF of `pyml deploy k8s`:
 *   LAYOUT=REGISTRY/REPO[:TAG]          an OCI layout (or OCI tarball) that was pushed there: the digest is the
 *                                        layout's manifest digest (push sends the manifest bytes unchanged), and the
 *                                        model name comes from its pyml.json; no registry is contacted.
 *   NAME[@VERSION]=REGISTRY/REPO@sha256:…  a pushed image named on the command line; nothing is read.
 *   REGISTRY/REPO@sha256:…              a pushed image, read from the registry (when `openRemote` is given) for
 *                                        its model name and sizing.
 * A tag alone is never enough: what is deployed is always pinned by digest.
 */
export async function resolveModelImage(spec: string, openRemote?: OpenRemoteImage): Promise<ModelImage> {
  const eq = spec.indexOf('=');
  if (eq > 0) {
    const left = spec.slice(0, eq);
    const right = spec.slice(eq + 1);
    if (await isLocalImage(left)) return fromLayout(left, right, spec);
    const [model, version] = left.split('@', 2) as [string, string | undefined];
    if (!MODEL_NAME.test(model) || (version !== undefined && !MODEL_VERSION.test(version))) throw new Error(`${spec}: '${left}' is neither an image layout on disk nor a model name (NAME or NAME@VERSION)`);
    const name = parseImageName(right, spec);
    if (!name.digest) throw new Error(`${spec}: '${right}' has no digest; give REGISTRY/REPO@sha256:… (images are deployed by digest, never by tag), or LAYOUT=${right} to take the digest from the layout that was pushed`);
    return { name: model, ...(version ? { version } : {}), image: digestReference(name, name.digest), digest: name.digest, from: 'command line' };
  }
  const name = parseImageName(spec, spec);
  if (!name.digest) throw new Error(`${spec}: no digest; give REGISTRY/REPO@sha256:…, NAME=REGISTRY/REPO@sha256:…, or LAYOUT=REGISTRY/REPO (digest from the pushed layout). Images are deployed by digest, never by tag`);
  if (!openRemote) throw new Error(`${spec}: reading the image from its registry is not available here; name the model: NAME=${spec}`);
  const source = await openRemote(spec);
  try {
    // The pull fetched the manifest by that digest and checked it; when it differs from the image's, the digest
    // named an image index (multi-platform) and the model was read from this machine's platform image.
    const index = source.manifestDigest !== name.digest ? ' (image index)' : '';
    return { ...(await describe(source, spec)), image: digestReference(name, name.digest), digest: name.digest, from: `registry ${name.repository}${index}` };
  } finally {
    await source.close();
  }
}

async function fromLayout(layout: string, target: string, spec: string): Promise<ModelImage> {
  const name = parseImageName(target, spec);
  const opened = await openLayoutImage(layout).catch((error: Error) => { throw new Error(`${spec}: ${error.message}`); });
  try {
    if (name.digest && name.digest !== opened.digest) {
      throw new Error(`${spec}: the layout's manifest is ${opened.digest}, but the reference pins ${name.digest}; push the layout again or fix the reference`);
    }
    const from = `layout ${layout}${opened.platform ? ` (image index; model read from its ${opened.platform} image)` : ''}`;
    return { ...(await describe(opened.source, spec)), image: digestReference(name, opened.digest), digest: opened.digest, from };
  } finally {
    await opened.source.close();
  }
}

async function describe(source: OpenedImage, spec: string): Promise<Pick<ModelImage, 'name' | 'version' | 'weightsBytes' | 'resources'>> {
  // Typed loosely: a pushed image's pyml.json is checked here before a manifest is written from it.
  const manifest: { name?: unknown; version?: unknown; weights?: { files?: { size?: number }[] }; deploy?: { resources?: unknown } } = await requirePymlManifest(source, spec);
  if (typeof manifest.name !== 'string' || !MODEL_NAME.test(manifest.name)) throw new Error(`${spec}: ${MANIFEST_PATH} has no valid "name"`);
  const weightsBytes = (manifest.weights?.files ?? []).reduce((n, f) => n + (typeof f.size === 'number' ? f.size : 0), 0);
  const resources = manifest.deploy?.resources === undefined ? undefined : checkRequirements(manifest.deploy.resources, `${spec}: ${MANIFEST_PATH} deploy.resources`);
  const version = typeof manifest.version === 'string' && MODEL_VERSION.test(manifest.version) ? manifest.version : undefined;
  return { name: manifest.name, ...(version ? { version } : {}), weightsBytes, resources };
}

async function isLocalImage(path: string): Promise<boolean> {
  if (await stat(path).then(() => true, () => false)) return true;
  // LAYOUT:REFNAME picks one image of a layout holding several.
  const m = /^(.*):([^:/]+)$/.exec(path);
  return Boolean(m && !DIGEST.test(path) && (await stat(m[1]).then(() => true, () => false)));
}

/**
 * `--serve-image`: REPO@sha256:… as given, or LAYOUT=REGISTRY/REPO[:TAG] for a serve image layout that was pushed
 * there (its manifest digest is the pushed one), as for model images.
 */
export async function resolveServeImage(spec: string): Promise<string> {
  const eq = spec.indexOf('=');
  if (eq > 0 && (await isLocalImage(spec.slice(0, eq)))) {
    const name = parseImageName(spec.slice(eq + 1), `--serve-image ${spec}`);
    const opened = await openLayoutImage(spec.slice(0, eq)).catch((error: Error) => { throw new Error(`--serve-image ${spec}: ${error.message}`); });
    try {
      if (name.digest && name.digest !== opened.digest) throw new Error(`--serve-image ${spec}: the layout's manifest is ${opened.digest}, but the reference pins ${name.digest}`);
      return digestReference(name, opened.digest);
    } finally {
      await opened.source.close();
    }
  }
  return requireDigestReference(spec, '--serve-image');
}
