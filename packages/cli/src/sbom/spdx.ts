import type { Component } from '@pyml/image/pyml-format';
import { sbomLicense } from './licenses.ts';
import { imagePurl, integrityHash, purlOf } from './purl.ts';
import { componentRefs, type SbomSubject } from './sbom-subject.ts';

export const SPDX_MEDIA_TYPE = 'application/spdx+json';

/**
 * The image as an SPDX 2.3 JSON document: the image a CONTAINER package the document DESCRIBES, which CONTAINS one
 * package per thing it carries (files and weights as FILE packages with their SHA256), with package URLs as
 * PACKAGE-MANAGER references, declared licences as SPDX expressions (LicenseRef-… with the declared text for a
 * licence that is none) and NOASSERTION where nothing is known. Deterministic, like the CycloneDX form.
 */
export function spdx(subject: SbomSubject): Record<string, unknown> {
  const refs = componentRefs(subject.components);
  const extracted = new Map<string, string>();
  const packages = subject.components.map((c, i) => spdxPackage(c, `SPDXRef-${i + 1}-${sanitize(refs[i]!)}`, extracted));
  const image = {
    SPDXID: 'SPDXRef-Image', name: subject.name, versionInfo: subject.version, downloadLocation: 'NOASSERTION', filesAnalyzed: false,
    primaryPackagePurpose: 'CONTAINER', checksums: [{ algorithm: 'SHA256', checksumValue: subject.digest.replace(/^sha256:/, '') }],
    externalRefs: [{ referenceCategory: 'PACKAGE-MANAGER', referenceType: 'purl', referenceLocator: imagePurl(subject.name, subject.digest, subject.version) }],
    licenseConcluded: 'NOASSERTION', licenseDeclared: 'NOASSERTION', copyrightText: 'NOASSERTION', comment: `platform ${subject.platform}`,
  };
  return {
    spdxVersion: 'SPDX-2.3',
    dataLicense: 'CC0-1.0',
    SPDXID: 'SPDXRef-DOCUMENT',
    name: `${subject.name}-${subject.version}`,
    documentNamespace: `https://pyml.dev/spdx/${encodeURIComponent(subject.name)}/${subject.digest.replace(/^sha256:/, '')}`,
    creationInfo: { created: subject.created.replace(/\.\d+Z$/, 'Z'), creators: [`Tool: pyml-${subject.pyml}`] },
    documentDescribes: ['SPDXRef-Image'],
    packages: [image, ...packages],
    ...(extracted.size ? { hasExtractedLicensingInfos: [...extracted].map(([licenseId, text]) => ({ licenseId, extractedText: text, name: text })) } : {}),
    relationships: [
      { spdxElementId: 'SPDXRef-DOCUMENT', relationshipType: 'DESCRIBES', relatedSpdxElement: 'SPDXRef-Image' },
      ...packages.map((p) => ({ spdxElementId: 'SPDXRef-Image', relationshipType: 'CONTAINS', relatedSpdxElement: p.SPDXID })),
    ],
  };
}

function spdxPackage(c: Component, id: string, extracted: Map<string, string>): Record<string, unknown> & { SPDXID: string } {
  const purl = purlOf(c);
  const integrity = integrityHash(c.integrity);
  const checksums = [
    ...(c.sha256 ? [{ algorithm: 'SHA256', checksumValue: c.sha256 }] : []),
    ...(integrity ? [{ algorithm: integrity.algorithm.replace('-', ''), checksumValue: integrity.hex }] : []),
  ];
  const comment = [`part ${c.part}, layer ${c.layer}`, ...(c.paths?.length ? [`in the image at ${c.paths.join(', ')}`] : []),
    ...(c.debian && c.type !== 'deb' ? [`from Debian package ${c.debian.package} ${c.debian.version} (${c.debian.architecture})`] : []),
    ...(c.format ? [`format ${c.format}`] : []), ...(c.plugin ? [`plugin ${c.plugin}`] : [])].join('; ');
  return {
    SPDXID: id, name: c.name, ...(c.version ? { versionInfo: c.version } : {}), downloadLocation: 'NOASSERTION', filesAnalyzed: false,
    primaryPackagePurpose: c.type === 'file' || c.type === 'weights' ? 'FILE' : c.type === 'generic' ? 'APPLICATION' : 'LIBRARY',
    ...(checksums.length ? { checksums } : {}),
    ...(purl ? { externalRefs: [{ referenceCategory: 'PACKAGE-MANAGER', referenceType: 'purl', referenceLocator: purl }] } : {}),
    licenseConcluded: 'NOASSERTION', licenseDeclared: declared(c.license, extracted), copyrightText: 'NOASSERTION',
    ...(c.paths?.length === 1 && (c.type === 'file' || c.type === 'weights') ? { packageFileName: c.paths[0] } : {}),
    comment,
  };
}

/** An SPDX expression for the declared licence; a licence text that is no SPDX id becomes a LicenseRef. */
function declared(license: string | undefined, extracted: Map<string, string>): string {
  const form = sbomLicense(license);
  if (!form) return 'NOASSERTION';
  if ('id' in form) return form.id;
  if ('expression' in form) return form.expression;
  const ref = `LicenseRef-${sanitize(form.name).slice(0, 60)}`;
  extracted.set(ref, form.name);
  return ref;
}

/** SPDX ids take letters, digits, '.' and '-' only. */
function sanitize(text: string): string {
  return text.replace(/[^A-Za-z0-9.-]+/g, '-').replace(/^-+|-+$/g, '');
}
