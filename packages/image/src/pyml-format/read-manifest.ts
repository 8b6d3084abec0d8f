import type { OpenedImage } from '../open-image.ts';
import type { PymlManifest } from './manifest.ts';
import { MANIFEST_PATH } from './paths.ts';

/** The one serialisation of pyml.json: what the build writes into the entrypoint layer. */
export function pymlManifestBytes(manifest: PymlManifest): string {
  return `${JSON.stringify(manifest, null, 2)}\n`;
}

/** Parses pyml.json; `where` names the image in the error (a ref, a spec). Fields are trusted as the build wrote them. */
export function parsePymlManifest(bytes: Buffer, where: string): PymlManifest {
  try {
    return JSON.parse(bytes.toString('utf8')) as PymlManifest;
  } catch (error) {
    throw new Error(`${where}: ${MANIFEST_PATH} is not JSON: ${(error as Error).message}`);
  }
}

/** An image's pyml.json, read from its layers without unpacking; undefined for an image pyml did not build. */
export async function readPymlManifest(source: Pick<OpenedImage, 'readFile' | 'ref'>, where = source.ref): Promise<PymlManifest | undefined> {
  const bytes = await source.readFile(MANIFEST_PATH);
  return bytes ? parsePymlManifest(bytes, where) : undefined;
}

/** As readPymlManifest, for callers that need a pyml image: a clear error for any other. */
export async function requirePymlManifest(source: Pick<OpenedImage, 'readFile' | 'ref'>, where = source.ref): Promise<PymlManifest> {
  const manifest = await readPymlManifest(source, where);
  if (!manifest) throw new Error(`${where}: no ${MANIFEST_PATH}; is this an image built by pyml?`);
  return manifest;
}
