import { createHash } from 'node:crypto';
import type { Component } from '@pyml/image/pyml-format';
import { sbomLicense } from './licenses.ts';
import { imagePurl, integrityHash, purlOf } from './purl.ts';
import { componentRefs, type SbomSubject } from './sbom-subject.ts';

export const CYCLONEDX_MEDIA_TYPE = 'application/vnd.cyclonedx+json';

/**
 * The image as a CycloneDX 1.6 JSON BOM: the image itself as metadata.component (a container, by digest), and one
 * component per thing it carries: packages with their package URL, licences (SPDX ids or expressions where the
 * declared licence is one) and hashes; files and weights with their sha256; where each is in the image as
 * evidence occurrences, and its part and layer as pyml: properties. Deterministic: the serial number derives
 * from the digest and the timestamp is the image's.
 */
export function cycloneDx(subject: SbomSubject): Record<string, unknown> {
  const refs = componentRefs(subject.components);
  const imageRef = `image/${subject.name}@${subject.digest}`;
  return {
    $schema: 'http://cyclonedx.org/schema/bom-1.6.schema.json',
    bomFormat: 'CycloneDX',
    specVersion: '1.6',
    serialNumber: `urn:uuid:${uuidFrom(subject.digest)}`,
    version: 1,
    metadata: {
      timestamp: subject.created,
      tools: { components: [{ type: 'application', name: 'pyml', version: subject.pyml }] },
      component: {
        type: 'container', 'bom-ref': imageRef, name: subject.name, version: subject.version,
        purl: imagePurl(subject.name, subject.digest, subject.version),
        hashes: [{ alg: 'SHA-256', content: subject.digest.replace(/^sha256:/, '') }],
        properties: [{ name: 'pyml:platform', value: subject.platform }],
      },
    },
    components: subject.components.map((c, i) => component(c, refs[i]!)),
    dependencies: [{ ref: imageRef, dependsOn: refs }],
  };
}

function component(c: Component, ref: string): Record<string, unknown> {
  const purl = purlOf(c);
  const license = sbomLicense(c.license);
  const integrity = integrityHash(c.integrity);
  const hashes = [
    ...(c.sha256 ? [{ alg: 'SHA-256', content: c.sha256 }] : []),
    ...(integrity ? [{ alg: integrity.algorithm, content: integrity.hex }] : []),
  ];
  const [group, name] = c.type === 'npm' && c.name.startsWith('@') ? c.name.split('/', 2) as [string, string] : [undefined, c.name];
  const properties = [
    { name: 'pyml:part', value: c.part },
    { name: 'pyml:layer', value: c.layer },
    ...(c.plugin ? [{ name: 'pyml:plugin', value: c.plugin }] : []),
    ...(c.format ? [{ name: 'pyml:format', value: c.format }] : []),
    ...(c.size !== undefined ? [{ name: 'pyml:size', value: String(c.size) }] : []),
    ...(c.debian && c.type !== 'deb' ? [{ name: 'pyml:debian-package', value: `${c.debian.package}@${c.debian.version}?arch=${c.debian.architecture}` }] : []),
  ];
  return {
    type: TYPE[c.type], 'bom-ref': ref,
    ...(group ? { group } : {}), name, ...(c.version ? { version: c.version } : {}),
    ...(hashes.length ? { hashes } : {}),
    ...(license ? { licenses: 'expression' in license ? [{ expression: license.expression }] : [{ license: license }] } : {}),
    ...(purl ? { purl } : {}),
    ...(c.paths?.length ? { evidence: { occurrences: c.paths.map((location) => ({ location })) } } : {}),
    properties,
  };
}

const TYPE: Record<Component['type'], string> = {
  npm: 'library', deb: 'library', pypi: 'library', generic: 'application', file: 'file', weights: 'machine-learning-model',
};

/** A UUID (version 5 layout) made from the image digest: the same image, the same serial number. */
function uuidFrom(digest: string): string {
  const h = createHash('sha1').update(`pyml-sbom:${digest}`).digest();
  h[6] = (h[6]! & 0x0f) | 0x50;
  h[8] = (h[8]! & 0x3f) | 0x80;
  const x = h.subarray(0, 16).toString('hex');
  return `${x.slice(0, 8)}-${x.slice(8, 12)}-${x.slice(12, 16)}-${x.slice(16, 20)}-${x.slice(20)}`;
}
