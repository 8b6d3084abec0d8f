import { createHash, randomBytes } from 'node:crypto';
import { mkdir, open, readFile, rm, writeFile } from 'node:fs/promises';
import { basename, dirname, join, resolve } from 'node:path';
import { Transform } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import {
  ANNOTATION_REF_NAME, MEDIA_TYPE_DOCKER_MANIFEST, MEDIA_TYPE_DOCKER_MANIFEST_LIST, MEDIA_TYPE_INDEX, MEDIA_TYPE_MANIFEST,
  OCI_LAYOUT_VERSION, canonicalJson, isDigest, refuseToReplaceNonLayout, replaceDirectory, sha256Digest, type BlobStore, type OciDescriptor, type OciIndex, type OciManifest,
  type OciPlatform,
} from '@pyml/image';
import { ociArchitecture } from '@pyml/image/pyml-format';
import { ConnectionError, httpRequest, readBody, type HttpResponse } from './http.ts';
import { linkOrCopy } from './link-or-copy.ts';
import { formatReference, manifestReference, parseReference, type ImageReference } from './reference.ts';
import { RegistryClient, withRetries } from './registry-client.ts';

export interface PullOptions {
  /** `os/arch[/variant]` to pick from an image index (default: this machine's, linux). */
  platform?: string;
  log?: (message: string) => void;
  /** Bytes of one blob so far, and its size from the manifest. */
  onProgress?: (what: string, bytes: number, total?: number) => void;
  /**
   * A blob store to pull through: blobs it holds are linked into the layout instead of downloaded, and what is
   * downloaded goes into it, so the next pull of this image (or of one sharing its layers) downloads only what changed.
   */
  store?: BlobStore;
}

export interface PullResult {
  ref: string;
  digest: string;
  layout: string;
  platform: string;
  /** `reused`: taken from the store, not downloaded. */
  blobs: { what: string; digest: string; size: number; reused: boolean }[];
  seconds: number;
}

const MANIFEST_ACCEPT = [MEDIA_TYPE_MANIFEST, MEDIA_TYPE_INDEX, MEDIA_TYPE_DOCKER_MANIFEST, MEDIA_TYPE_DOCKER_MANIFEST_LIST].join(', ');
const MANIFEST_LIMIT = 8 * 1024 * 1024;

export function hostPlatform(): OciPlatform {
  return { os: 'linux', architecture: ociArchitecture() };
}

/**
 * Pulls one image into an OCI layout directory: the manifest (the platform's, from an index), its config and
 * its layers, each checked against its digest. Written under a temp name and renamed into place.
 */
export async function pullImage(target: string | ImageReference, outDir: string, options: PullOptions = {}): Promise<PullResult> {
  const started = performance.now();
  const ref = typeof target === 'string' ? parseReference(target) : target;
  const client = new RegistryClient(ref, { actions: 'pull', onRetry: options.log });
  const platform = options.platform ? parsePlatform(options.platform) : hostPlatform();
  const name = formatReference(ref);

  const { fetched, manifest, wanted, descriptorPlatform } = await resolveManifest(client, ref, platform);

  const layout = resolve(outDir);
  await refuseToReplaceNonLayout(layout);
  await mkdir(dirname(layout), { recursive: true });
  const temp = join(dirname(layout), `.${basename(layout)}.pull-${process.pid}-${randomBytes(4).toString('hex')}`);
  try {
    const blobDir = join(temp, 'blobs', 'sha256');
    await mkdir(blobDir, { recursive: true });
    const seen = new Set<string>();
    const reused = new Set<string>();
    for (const { d, what } of wanted) {
      if (seen.has(d.digest)) continue;
      seen.add(d.digest);
      const file = join(blobDir, d.digest.slice(7));
      // A prune may remove the blob between the check and the link: then it is downloaded like any other.
      if (options.store && (await options.store.has(d.digest)) && (await options.store.linkInto(d.digest, file).then(() => true, () => false))) {
        reused.add(d.digest);
        continue;
      }
      options.log?.(`fetching ${what} ${d.digest.slice(0, 19)} (${d.size} bytes)`);
      await downloadBlob(client, d, what, file, options);
      if (options.store) await keepInStore(options.store, file, d.digest);
    }
    await writeFile(join(blobDir, fetched.digest.slice(7)), fetched.bytes);
    const config = JSON.parse(await readFile(join(blobDir, manifest.config.digest.slice(7)), 'utf8')) as { os?: string; architecture?: string; variant?: string };
    const imagePlatform: OciPlatform = descriptorPlatform ?? { os: config.os ?? 'linux', architecture: config.architecture ?? 'unknown', ...(config.variant ? { variant: config.variant } : {}) };
    const index: OciIndex = {
      schemaVersion: 2, mediaType: MEDIA_TYPE_INDEX,
      manifests: [{
        mediaType: fetched.mediaType, digest: fetched.digest, size: fetched.bytes.length,
        ...(ref.tag ? { annotations: { [ANNOTATION_REF_NAME]: ref.tag } } : {}), platform: imagePlatform,
      }],
    };
    await writeFile(join(temp, 'index.json'), canonicalJson(index));
    await writeFile(join(temp, 'oci-layout'), canonicalJson({ imageLayoutVersion: OCI_LAYOUT_VERSION }));
    await replaceDirectory(temp, layout);
    return {
      ref: name, digest: fetched.digest, layout, platform: platformText(imagePlatform),
      blobs: wanted.map(({ d, what }) => ({ what, digest: d.digest, size: d.size, reused: reused.has(d.digest) })),
      seconds: (performance.now() - started) / 1000,
    };
  } catch (error) {
    await rm(temp, { recursive: true, force: true });
    throw new Error(`pull of ${name} failed, nothing was written to ${layout}: ${(error as Error).message}`);
  }
}

export interface ResolvedManifest {
  fetched: FetchedManifest;
  manifest: OciManifest;
  /** The config and the layers, in manifest order. */
  wanted: { d: OciDescriptor; what: string }[];
  /** The platform the image index gave the manifest, when it came from one. */
  descriptorPlatform?: OciPlatform;
}

/** GETs the manifest REF names, going through an image index to the `platform` image, and checks its shape. */
export async function resolveManifest(client: RegistryClient, ref: ImageReference, platform: OciPlatform): Promise<ResolvedManifest> {
  const name = formatReference(ref);
  let fetched = await fetchManifest(client, manifestReference(ref), ref.digest);
  let descriptorPlatform: OciPlatform | undefined;
  if (fetched.mediaType === MEDIA_TYPE_INDEX || fetched.mediaType === MEDIA_TYPE_DOCKER_MANIFEST_LIST) {
    const index = JSON.parse(fetched.bytes.toString('utf8')) as OciIndex;
    const chosen = (index.manifests ?? []).find((m) => m.platform?.os === platform.os && m.platform?.architecture === platform.architecture
      && (!platform.variant || m.platform?.variant === platform.variant));
    if (!chosen) {
      const has = (index.manifests ?? []).map((m) => m.platform ? platformText(m.platform) : m.digest).join(', ');
      throw new Error(`${name} is an image index with no ${platformText(platform)} image (it has: ${has || 'none'})`);
    }
    descriptorPlatform = chosen.platform;
    fetched = await fetchManifest(client, chosen.digest, chosen.digest);
  }
  if (fetched.mediaType !== MEDIA_TYPE_MANIFEST && fetched.mediaType !== MEDIA_TYPE_DOCKER_MANIFEST) {
    throw new Error(`${name}: manifest has unsupported media type ${fetched.mediaType}`);
  }
  const manifest = JSON.parse(fetched.bytes.toString('utf8')) as OciManifest;
  if (!manifest.config || !Array.isArray(manifest.layers)) throw new Error(`${name}: manifest ${fetched.digest} has no config or layers`);
  const wanted = [{ d: manifest.config, what: 'config' }, ...manifest.layers.map((d, i) => ({ d, what: `layer ${i}` }))];
  for (const { d, what } of wanted) {
    if (!isDigest(d.digest) || !Number.isSafeInteger(d.size)) throw new Error(`${name}: manifest ${fetched.digest} ${what} has a bad digest or size`);
  }
  return { fetched, manifest, wanted, descriptorPlatform };
}

export function parsePlatform(text: string): OciPlatform {
  const [os, architecture, variant, ...rest] = text.split('/');
  if (!os || !architecture || rest.length) throw new Error(`platform ${JSON.stringify(text)} is not OS/ARCH[/VARIANT], e.g. linux/amd64`);
  return { os, architecture, ...(variant ? { variant } : {}) };
}

export function platformText(p: OciPlatform): string {
  return `${p.os}/${p.architecture}${p.variant ? `/${p.variant}` : ''}`;
}

export interface FetchedManifest {
  bytes: Buffer;
  digest: string;
  mediaType: string;
}

export async function fetchManifest(client: RegistryClient, reference: string, expectedDigest?: string): Promise<FetchedManifest> {
  const what = `fetching manifest ${reference} of ${client.repository}`;
  return withRetries(client.attempts, what, client.ref.registry, () => {}, async () => {
    const res = await client.send({ method: 'GET', url: client.path(`/manifests/${reference}`), what, headers: { Accept: MANIFEST_ACCEPT }, expect: [200], retry: false })
      .catch((error: Error & { status?: number }) => {
        if (error.status === 404) throw new Error(`${client.ref.registry}/${client.repository}:${reference} does not exist (manifest unknown)`);
        throw error;
      });
    const bytes = await readBody(res, MANIFEST_LIMIT).catch((error: Error) => { throw new ConnectionError(`${what}: ${error.message}`, 0); });
    const digest = sha256Digest(bytes);
    if (expectedDigest && digest !== expectedDigest) throw new Error(`${what}: content hashes to ${digest}, expected ${expectedDigest}`);
    let parsed: { mediaType?: string };
    try {
      parsed = JSON.parse(bytes.toString('utf8')) as { mediaType?: string };
    } catch {
      throw new Error(`${what}: not JSON`);
    }
    const headerType = String(res.headers['content-type'] ?? '').split(';')[0].trim();
    return { bytes, digest, mediaType: parsed.mediaType ?? headerType ?? MEDIA_TYPE_MANIFEST };
  });
}

/** GETs a blob (following a redirect to storage) into `file`, failing unless it hashes to its digest. */
export async function downloadBlob(client: RegistryClient, d: OciDescriptor, what: string, file: string, options: PullOptions): Promise<void> {
  const label = `fetching ${what} ${d.digest}`;
  await withRetries(client.attempts, label, client.ref.registry, options.log ?? (() => {}), async () => {
    let res: HttpResponse = await client.send({ method: 'GET', url: client.path(`/blobs/${d.digest}`), what: label, expect: [200, 301, 302, 303, 307, 308], retry: false });
    for (let hops = 0; res.status !== 200; hops++) {
      const location = res.headers.location;
      res.body.resume();
      if (!location || hops > 4) throw new Error(`${label}: redirect without a usable Location`);
      res = await httpRequest({ method: 'GET', url: new URL(location, client.baseUrl).toString() });
      if (res.status >= 500) throw new ConnectionError(`${label}: storage answered ${res.status}`, 0);
    }
    const hash = createHash('sha256');
    let bytes = 0;
    const check = new Transform({
      transform(chunk: Buffer, _enc, callback) {
        bytes += chunk.length;
        if (bytes > d.size) return callback(new Error(`${label}: more than the ${d.size} bytes the manifest declares`));
        hash.update(chunk);
        options.onProgress?.(what, bytes, d.size);
        callback(null, chunk);
      },
    });
    try {
      // Opened before the pipeline runs: a file that createWriteStream opened late could appear after a failure's rm.
      await pipeline(res.body, check, (await open(file, 'w')).createWriteStream());
    } catch (error) {
      if ((error as Error).message.startsWith(label)) throw error;
      throw new ConnectionError(`${label}: the connection failed after ${bytes} of ${d.size} bytes (${(error as Error).message})`, 0);
    }
    const actual = 'sha256:' + hash.digest('hex');
    if (bytes !== d.size) throw new ConnectionError(`${label}: got ${bytes} of ${d.size} bytes`, 0);
    if (actual !== d.digest) throw new Error(`${label}: content hashes to ${actual}`);
  });
}

/** Puts a blob just downloaded (and checked against its digest) into the store too. */
async function keepInStore(store: BlobStore, file: string, digest: string): Promise<void> {
  if (await store.has(digest)) return;
  const temp = await store.tempPath();
  try {
    await linkOrCopy(file, temp);
    await store.commit(temp, digest);
  } finally {
    await rm(temp, { force: true });
  }
}
