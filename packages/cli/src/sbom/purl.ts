import type { Component } from '@pyml/image/pyml-format';

const enc = (s: string) => encodeURIComponent(s);

/**
 * A component's package URL (github.com/package-url/purl-spec): npm (scope as namespace), deb (debian namespace,
 * arch qualifier), pypi (normalised name), generic (node). Files and weights have none: their hashes identify them.
 */
export function purlOf(c: Component): string | undefined {
  const at = c.version ? `@${enc(c.version)}` : '';
  switch (c.type) {
    case 'npm': {
      const [scope, name] = c.name.startsWith('@') ? c.name.split('/', 2) as [string, string] : [undefined, c.name];
      return `pkg:npm/${scope ? `${enc(scope)}/` : ''}${enc(name)}${at}`;
    }
    case 'deb':
      return `pkg:deb/debian/${enc(c.name)}${at}${c.debian ? `?arch=${enc(c.debian.architecture)}` : ''}`;
    case 'pypi':
      return `pkg:pypi/${enc(c.name.toLowerCase().replace(/[-_.]+/g, '-'))}${at}`;
    case 'generic':
      return `pkg:generic/${enc(c.name)}${at}`;
    default:
      return undefined;
  }
}

/** The image's own package URL (purl type oci): its name and manifest digest, with the tag it was built as. */
export function imagePurl(name: string, digest: string, tag?: string): string {
  return `pkg:oci/${enc(name.split('/').pop()!.toLowerCase())}@${enc(digest)}${tag ? `?tag=${enc(tag)}` : ''}`;
}

/** An npm integrity string (sha512-<base64>) as an algorithm and hex digest. */
export function integrityHash(integrity: string | undefined): { algorithm: 'SHA-512' | 'SHA-384' | 'SHA-256' | 'SHA-1'; hex: string } | undefined {
  const m = integrity ? /^(sha512|sha384|sha256|sha1)-([A-Za-z0-9+/=]+)$/.exec(integrity.split(/\s+/)[0]!) : null;
  if (!m) return undefined;
  const algorithm = ({ sha512: 'SHA-512', sha384: 'SHA-384', sha256: 'SHA-256', sha1: 'SHA-1' } as const)[m[1] as 'sha512'];
  return { algorithm, hex: Buffer.from(m[2]!, 'base64').toString('hex') };
}
