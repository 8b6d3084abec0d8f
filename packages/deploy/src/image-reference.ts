/** `REGISTRY/REPOSITORY[:TAG][@sha256:DIGEST]`, split the way Docker does (a tag's colon comes after the last slash). */
export interface ImageName {
  repository: string;
  tag?: string;
  digest?: string;
}

const COMPONENT = '[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*';
const HOST = '(?:[a-zA-Z0-9.-]+(?::\\d+)?|\\[[0-9a-fA-F:]+\\](?::\\d+)?)';
const REPOSITORY = new RegExp(`^(?:${HOST}/)?${COMPONENT}(?:/${COMPONENT})*$`);
const TAG = /^[\w][\w.-]{0,127}$/;
export const DIGEST = /^sha256:[0-9a-f]{64}$/;

export function parseImageName(text: string, what: string): ImageName {
  let rest = text;
  let digest: string | undefined;
  const at = rest.indexOf('@');
  if (at >= 0) {
    digest = rest.slice(at + 1);
    rest = rest.slice(0, at);
    if (!DIGEST.test(digest)) throw new Error(`${what}: '${digest}' is not a sha256 digest (sha256: and 64 hex digits)`);
  }
  let tag: string | undefined;
  const colon = rest.lastIndexOf(':');
  if (colon > rest.lastIndexOf('/')) {
    tag = rest.slice(colon + 1);
    rest = rest.slice(0, colon);
    if (!TAG.test(tag)) throw new Error(`${what}: '${tag}' is not a valid tag`);
  }
  if (!REPOSITORY.test(rest)) throw new Error(`${what}: '${text}' is not an image reference (expected REGISTRY/REPOSITORY[:TAG][@sha256:DIGEST], e.g. registry.example.com/models/iris@sha256:…)`);
  return { repository: rest, tag, digest };
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
