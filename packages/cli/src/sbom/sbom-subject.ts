import type { Component, PymlManifest } from '@pyml/image/pyml-format';

/** What an SBOM describes: one image, by its manifest digest, and everything it carries. */
export interface SbomSubject {
  name: string;
  version: string;
  /** The image manifest's digest. */
  digest: string;
  platform: string;
  /** The image's creation time (its SOURCE_DATE_EPOCH), so the same image gives the same SBOM bytes. */
  created: string;
  pyml: string;
  components: Component[];
}

/** The subject from an image's pyml.json; an image built before pyml recorded its components cannot have one. */
export function sbomSubject(manifest: PymlManifest, digest: string, where: string): SbomSubject {
  if (!manifest.components) {
    throw new Error(`${where} was built by pyml ${manifest.build.pyml} before images listed their components (pyml.json has no "components"): rebuild it to export an SBOM`);
  }
  const { platform } = manifest.build;
  return {
    name: manifest.name, version: manifest.version, digest, platform: `${platform.os}/${platform.architecture}`,
    created: manifest.build.created, pyml: manifest.build.pyml, components: manifest.components,
  };
}

/** A reference unique within the document for each component, stable across runs (its part, layer, kind and name). */
export function componentRefs(components: Component[]): string[] {
  const seen = new Map<string, number>();
  return components.map((c) => {
    const base = `${c.part}/${c.layer}/${c.type}/${c.name}${c.version ? `@${c.version}` : ''}`;
    const n = seen.get(base) ?? 0;
    seen.set(base, n + 1);
    return n ? `${base}#${n + 1}` : base;
  });
}
