import { parseReference } from '@pyml/registry/reference';

/** A registry image as manifests name it: `REGISTRY/REPOSITORY` (always with its registry), tag and digest. */
export interface ImageName {
  repository: string;
  tag?: string;
  digest?: string;
}

export const DIGEST = /^sha256:[0-9a-f]{64}$/;

/** Parsed with the same grammar `pyml push` and `pyml pull` use, so every verb accepts the same references. */
export function parseImageName(text: string, what: string): ImageName {
  let ref;
  try {
    ref = parseReference(text);
  } catch {
    throw new Error(`${what}: '${text}' is not an image reference (expected REGISTRY/REPOSITORY[:TAG][@sha256:DIGEST], e.g. registry.example.com/models/iris@sha256:…)`);
  }
  return { repository: `${ref.registry}/${ref.repository}`, tag: ref.tag, digest: ref.digest };
}

/** The only form written into manifests: pinned by digest, so what runs is exactly what was built and pushed. */
export function digestReference(name: ImageName, digest: string): string {
  return `${name.repository}@${digest}`;
}

/** A `--serve-image` style argument that must already be pinned: REPOSITORY@sha256:… (a tag beside it is dropped). */
export function requireDigestReference(text: string, what: string): string {
  const name = parseImageName(text, what);
  if (!name.digest) throw new Error(`${what}: '${text}' names no digest; images are deployed by digest only (REPOSITORY@sha256:…), never by tag`);
  return digestReference(name, name.digest);
}
