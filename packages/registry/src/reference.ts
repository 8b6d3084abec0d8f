import { redactCredentials } from './redact-credentials.ts';

/** A parsed image reference: `[docker://]HOST[:PORT]/REPO[:TAG][@sha256:DIGEST]`, Docker's grammar. */
export interface ImageReference {
  /** As the user wrote it (without `docker://`). */
  text: string;
  /** Registry host as credentials are keyed: `127.0.0.1:5000`, `docker.io`. */
  registry: string;
  repository: string;
  tag?: string;
  digest?: string;
}

const DOCKER_HUB = 'docker.io';
const COMPONENT = '[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*';
const REPOSITORY_PATTERN = new RegExp(`^${COMPONENT}(?:/${COMPONENT})*$`);
const TAG_PATTERN = /^[\w][\w.-]{0,127}$/;
const DIGEST_PATTERN = /^sha256:[0-9a-f]{64}$/;

/** Whether `text` names a registry image rather than a file: `docker://…`, or a first component that is a host. */
/** How an engine's image is named where a registry's or a file's could be: `docker-daemon:NAME:TAG`. */
export const DOCKER_DAEMON_PREFIX = 'docker-daemon:';

export function looksLikeRegistryRef(text: string): boolean {
  if (text.startsWith('docker://')) return true;
  const slash = text.indexOf('/');
  if (slash <= 0) return false;
  const first = text.slice(0, slash);
  return (first.includes('.') || first.includes(':') || first === 'localhost') && !text.startsWith('.') && tryParse(text) !== undefined;
}

export function parseReference(input: string): ImageReference {
  const result = tryParse(input);
  if (!result) {
    throw new Error(`not an image reference: ${JSON.stringify(redactCredentials(input))} (expected HOST[:PORT]/REPOSITORY[:TAG][@sha256:DIGEST], e.g. 127.0.0.1:5000/iris:1.0.0)`);
  }
  return result;
}

function tryParse(input: string): ImageReference | undefined {
  const text = input.startsWith('docker://') ? input.slice('docker://'.length) : input;
  let rest = text;
  let digest: string | undefined;
  const at = rest.indexOf('@');
  if (at >= 0) {
    digest = rest.slice(at + 1);
    rest = rest.slice(0, at);
    if (!DIGEST_PATTERN.test(digest)) return undefined;
  }
  let tag: string | undefined;
  const colon = rest.lastIndexOf(':');
  if (colon > rest.lastIndexOf('/')) {
    tag = rest.slice(colon + 1);
    rest = rest.slice(0, colon);
    if (!TAG_PATTERN.test(tag)) return undefined;
  }
  let registry = DOCKER_HUB;
  let repository = rest;
  const slash = rest.indexOf('/');
  const first = slash > 0 ? rest.slice(0, slash) : '';
  if (first && (first.includes('.') || first.includes(':') || first === 'localhost')) {
    registry = first;
    repository = rest.slice(slash + 1);
    if (!/^[a-zA-Z0-9.-]+(?::\d+)?$|^\[[0-9a-fA-F:]+\](?::\d+)?$/.test(registry)) return undefined;
  }
  if (registry === DOCKER_HUB && !repository.includes('/')) repository = `library/${repository}`;
  if (!REPOSITORY_PATTERN.test(repository)) return undefined;
  if (!tag && !digest) tag = 'latest';
  return { text, registry, repository, tag, digest };
}

/** The manifest reference to GET or PUT: the digest when there is one, else the tag. */
export function manifestReference(ref: ImageReference): string {
  return ref.digest ?? ref.tag!;
}

export function formatReference(ref: ImageReference): string {
  return `${ref.registry}/${ref.repository}${ref.tag ? `:${ref.tag}` : ''}${ref.digest ? `@${ref.digest}` : ''}`;
}

/**
 * The base URL of the registry's API. Plain HTTP only for loopback hosts and those listed in
 * PYML_INSECURE_REGISTRIES (comma-separated), as Docker's insecure-registries setting does.
 */
export function registryBaseUrl(registry: string): string {
  if (registry === DOCKER_HUB) return 'https://registry-1.docker.io';
  const host = registry.replace(/:\d+$/, '').replace(/^\[|\]$/g, '');
  const insecure = (process.env.PYML_INSECURE_REGISTRIES ?? '').split(',').map((s) => s.trim()).filter(Boolean);
  const loopback = host === 'localhost' || host === '::1' || /^127\./.test(host);
  return `${loopback || insecure.includes(registry) || insecure.includes(host) ? 'http' : 'https'}://${registry}`;
}
