import { MEDIA_TYPE_INDEX, MEDIA_TYPE_MANIFEST, sha256Digest, type OciDescriptor, type OciIndex, type OciManifest, type OpenedImage } from '@pyml/image';
import { describeErrorBody, discardBody, readBody } from './http.ts';
import { RegistryClient } from './registry-client.ts';
import type { ImageReference } from './reference.ts';

/** An artifact that refers to an image (OCI 1.1 `subject`): its manifest and the blobs it names. */
export interface Referrer {
  descriptor: OciDescriptor & { artifactType: string };
  manifestBytes: Buffer;
  manifest: OciManifest;
  /** Config and layer blobs with their bytes (artifacts are small: an SBOM, a signature). */
  blobs: { descriptor: OciDescriptor; bytes: Buffer }[];
}

export interface PushedReferrer {
  artifactType: string;
  digest: string;
  /** `referrers-api` when the registry indexed the subject itself (it answered OCI-Subject), else `tag-schema`. */
  via: 'referrers-api' | 'tag-schema';
  /** With the tag schema: the sha256-<hex> tag whose index lists the artifact. */
  tag?: string;
}

/** Artifacts are small; a manifest or blob over this is refused rather than read into memory. */
const ARTIFACT_LIMIT = 16 << 20;

/** The artifacts an opened layout lists beside its image whose subject is that image, with their blobs. */
export async function layoutReferrers(source: OpenedImage): Promise<Referrer[]> {
  const found: Referrer[] = [];
  for (const d of source.artifacts ?? []) {
    if (d.size > ARTIFACT_LIMIT) throw new Error(`${source.ref}: artifact ${d.digest} is ${d.size} bytes, more than an artifact manifest should be`);
    const manifestBytes = await readAll(await source.openBlob(d.digest));
    const manifest = JSON.parse(manifestBytes.toString('utf8')) as OciManifest;
    if (manifest.subject?.digest !== source.manifestDigest) continue;
    const blobs = [];
    for (const b of [manifest.config, ...manifest.layers]) {
      if (b.size > ARTIFACT_LIMIT) throw new Error(`${source.ref}: artifact ${d.digest}'s blob ${b.digest} is ${b.size} bytes, more than pyml carries in an artifact`);
      blobs.push({ descriptor: b, bytes: b.data !== undefined ? Buffer.from(b.data, 'base64') : await readAll(await source.openBlob(b.digest)) });
    }
    found.push({ descriptor: { ...d, artifactType: d.artifactType ?? manifest.artifactType ?? manifest.config.mediaType }, manifestBytes, manifest, blobs });
  }
  return found;
}

/**
 * Pushes an artifact that refers to an image already pushed: its blobs, then its manifest by digest. A registry
 * with the referrers API answers `OCI-Subject` and indexes it itself; for one without (distribution 2.x), the
 * client keeps the index under the tag `sha256-<subject hex>` (the referrers tag schema of the OCI distribution
 * spec 1.1): read it, add the artifact's descriptor once, put it back.
 */
export async function pushReferrer(ref: ImageReference, referrer: Referrer, log: (m: string) => void = () => {}): Promise<PushedReferrer> {
  const client = new RegistryClient(ref, { actions: 'pull,push', onRetry: log });
  for (const { descriptor, bytes } of referrer.blobs) await putBlob(client, descriptor, bytes);
  const digest = sha256Digest(referrer.manifestBytes);
  const put = await client.send({
    method: 'PUT', url: client.path(`/manifests/${digest}`), what: `putting the ${referrer.descriptor.artifactType} artifact manifest`,
    headers: { 'Content-Type': MEDIA_TYPE_MANIFEST }, body: () => referrer.manifestBytes, expect: [200, 201],
  });
  await discardBody(put);
  const subject = referrer.manifest.subject!;
  const artifactType = referrer.descriptor.artifactType;
  if (put.headers['oci-subject'] === subject.digest) return { artifactType, digest, via: 'referrers-api' };
  const tag = fallbackTag(subject.digest);
  const index = (await getTagIndex(client, tag)) ?? { schemaVersion: 2, mediaType: MEDIA_TYPE_INDEX, manifests: [] };
  if (!index.manifests.some((m) => m.digest === digest)) {
    index.manifests.push({ mediaType: MEDIA_TYPE_MANIFEST, digest, size: referrer.manifestBytes.length, artifactType, ...(referrer.manifest.annotations ? { annotations: referrer.manifest.annotations } : {}) });
    const bytes = Buffer.from(JSON.stringify(index));
    const res = await client.send({
      method: 'PUT', url: client.path(`/manifests/${tag}`), what: `putting the referrers index ${tag}`,
      headers: { 'Content-Type': MEDIA_TYPE_INDEX }, body: () => bytes, expect: [200, 201],
    });
    await discardBody(res);
  }
  log(`${artifactType} ${digest.slice(0, 19)}: referrers tag ${tag}`);
  return { artifactType, digest, via: 'tag-schema', tag };
}

/**
 * The artifacts a registry knows refer to `digest`: its referrers API (GET /v2/<name>/referrers/<digest>), or,
 * when it has none (404), the index under the `sha256-<hex>` tag; [] when neither lists any.
 */
export async function listReferrers(ref: ImageReference, digest: string): Promise<{ descriptors: OciDescriptor[]; via: 'referrers-api' | 'tag-schema' }> {
  const client = new RegistryClient(ref, { actions: 'pull' });
  const res = await client.send({ method: 'GET', url: client.path(`/referrers/${digest}`), what: 'listing the referrers', headers: { Accept: MEDIA_TYPE_INDEX }, expect: [200, 404] });
  if (res.status === 200) {
    const index = JSON.parse((await readBody(res, ARTIFACT_LIMIT)).toString('utf8')) as OciIndex;
    return { descriptors: index.manifests ?? [], via: 'referrers-api' };
  }
  await discardBody(res);
  return { descriptors: (await getTagIndex(client, fallbackTag(digest)))?.manifests ?? [], via: 'tag-schema' };
}

/** The referrers tag schema's tag for a subject: `sha256-<hex>`. */
export function fallbackTag(digest: string): string {
  return digest.replace(':', '-');
}

async function getTagIndex(client: RegistryClient, tag: string): Promise<OciIndex | undefined> {
  const res = await client.send({ method: 'GET', url: client.path(`/manifests/${tag}`), what: `reading the referrers index ${tag}`, headers: { Accept: MEDIA_TYPE_INDEX }, expect: [200, 404] });
  if (res.status === 404) {
    await discardBody(res);
    return undefined;
  }
  const index = JSON.parse((await readBody(res, ARTIFACT_LIMIT)).toString('utf8')) as OciIndex;
  if (!Array.isArray(index.manifests)) throw new Error(`${client.ref.registry}/${client.repository}:${tag} is not an image index (no "manifests"); the referrers tag schema needs that tag`);
  return index;
}

/** A small blob: HEAD, else one POST and a PUT with the bytes. */
async function putBlob(client: RegistryClient, d: OciDescriptor, bytes: Buffer): Promise<void> {
  const head = await client.send({ method: 'HEAD', url: client.path(`/blobs/${d.digest}`), what: `checking blob ${d.digest}`, expect: [200, 404] });
  await discardBody(head);
  if (head.status === 200) return;
  const start = await client.send({ method: 'POST', url: client.path('/blobs/uploads/'), what: `starting the upload of ${d.digest}`, expect: [202], headers: { 'Content-Length': 0 } });
  await discardBody(start);
  const location = start.headers.location;
  if (!location) throw new Error(`starting the upload of ${d.digest}: the registry gave no Location`);
  const url = new URL(location, client.baseUrl);
  url.searchParams.set('digest', d.digest);
  const put = await client.send({
    method: 'PUT', url: url.toString(), what: `uploading blob ${d.digest}`, expect: [201, 204],
    headers: { 'Content-Type': 'application/octet-stream', 'Content-Length': bytes.length }, body: () => bytes,
  });
  if (put.status !== 201 && put.status !== 204) throw new Error(`uploading blob ${d.digest}: ${await describeErrorBody(put)}`);
  await discardBody(put);
}

async function readAll(stream: NodeJS.ReadableStream): Promise<Buffer> {
  const chunks: Buffer[] = [];
  let total = 0;
  for await (const chunk of stream) {
    total += (chunk as Buffer).length;
    if (total > ARTIFACT_LIMIT) throw new Error(`an artifact blob is larger than ${ARTIFACT_LIMIT} bytes`);
    chunks.push(chunk as Buffer);
  }
  return Buffer.concat(chunks);
}
