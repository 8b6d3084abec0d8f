import { Readable } from 'node:stream';
import type { Image, OpenedImage, OciDescriptor } from '@pyml/image';
import { MEDIA_TYPE_INDEX, MEDIA_TYPE_MANIFEST, openImage, sha256Digest } from '@pyml/image';
import { PART_ANNOTATION, PART_NAME_ANNOTATION } from '@pyml/image/pyml-format';
import { KnownBlobs } from './known-blobs.ts';
import { discardBody } from './http.ts';
import { formatReference, manifestReference, parseReference, type ImageReference } from './reference.ts';
import { RegistryClient, withRetries } from './registry-client.ts';
import { layoutReferrers, pushReferrer, type PushedReferrer, type Referrer } from './referrers.ts';

export interface PushOptions {
  /** Repositories on the same registry that may already hold the blobs: mounted instead of uploaded. */
  mountFrom?: string[];
  /** Where pushes are remembered for later mounts (default: in PYML_CACHE_DIR); false to neither read nor write. */
  knownBlobs?: KnownBlobs | false;
  /** Blobs uploaded at once (default 3). */
  concurrency?: number;
  log?: (message: string) => void;
  /** Bytes of one blob sent so far, and its size. */
  onProgress?: (what: string, bytes: number, total?: number) => void;
}

export type BlobAction = 'exists' | 'mounted' | 'uploaded';

export interface PushedBlob {
  what: string;
  digest: string;
  size: number;
  action: BlobAction;
  from?: string;
}

export interface PushResult {
  ref: string;
  digest: string;
  blobs: PushedBlob[];
  uploadedBytes: number;
  seconds: number;
  /** Artifacts that refer to the image (an SBOM from `pyml build --sbom`), pushed after it. */
  referrers?: PushedReferrer[];
}

/**
 * Pushes one image, built or read: every blob the registry lacks is mounted from a sibling repository or uploaded (POST then
 * a streamed PUT), and only when all are there is the manifest PUT, so a failed push never leaves a manifest
 * pointing at missing blobs.
 */
export async function pushImage(image: Image, target: string | ImageReference, options: PushOptions = {}): Promise<PushResult> {
  const started = performance.now();
  const ref = typeof target === 'string' ? parseReference(target) : target;
  const log = options.log ?? (() => {});
  const known = options.knownBlobs === false ? undefined : options.knownBlobs ?? new KnownBlobs();
  // An image built on a base from this registry names it (org.opencontainers.image.base.name): mount its layers.
  const baseName = image.manifest.annotations?.['org.opencontainers.image.base.name'];
  const base = baseName ? tryParse(baseName) : undefined;
  const fromBase = base && base.registry === ref.registry ? [base.repository] : [];
  const mountFrom = [...new Set([...(options.mountFrom ?? []), ...fromBase])].filter((r) => r !== ref.repository);
  const client = new RegistryClient(ref, { actions: 'pull,push', alsoPull: mountFrom, onRetry: log });

  const blobs: BlobToPush[] = [
    { descriptor: image.manifest.config, what: 'config', open: async () => Readable.from([image.configBytes]) },
    ...image.layers.map((layer, i) => ({ descriptor: layer, what: `layer ${i}${partName(layer)}`, open: () => layer.openBlob() })),
  ];
  const unique = [...new Map(blobs.map((b) => [b.descriptor.digest, b])).values()];
  // Biggest first, so the long uploads overlap the short ones.
  const queue = [...unique].sort((a, b) => b.descriptor.size - a.descriptor.size);
  const results = new Map<string, PushedBlob>();
  let failure: Error | undefined;
  const worker = async () => {
    for (let next = queue.shift(); next && !failure; next = queue.shift()) {
      try {
        const pushed = await pushBlob(client, next, mountFrom, known, options);
        results.set(next.descriptor.digest, pushed);
        log(`${next.what} ${next.descriptor.digest.slice(0, 19)}: ${pushed.action}${pushed.from ? ` from ${pushed.from}` : ''}`);
      } catch (error) {
        failure ??= error as Error;
      }
    }
  };
  await Promise.all(Array.from({ length: Math.max(1, options.concurrency ?? 3) }, worker));
  if (failure) throw new Error(`push to ${formatReference(ref)} failed, no manifest was written: ${failure.message}`);

  const manifestBytes = image.manifestBytes;
  const mediaType = image.manifest.mediaType ?? MEDIA_TYPE_MANIFEST;
  const res = await client.send({
    method: 'PUT', url: client.path(`/manifests/${manifestReference(ref)}`), what: 'putting the manifest',
    headers: { 'Content-Type': mediaType }, body: () => manifestBytes, expect: [200, 201],
  });
  await discardBody(res);
  const digest = sha256Digest(manifestBytes);
  const echoed = res.headers['docker-content-digest'];
  if (typeof echoed === 'string' && echoed !== digest) {
    throw new Error(`push to ${formatReference(ref)}: the registry stored the manifest as ${echoed}, expected ${digest}`);
  }
  if (known) await known.remember(ref.registry, ref.repository, unique.map((b) => b.descriptor.digest)).catch(() => {});
  const ordered = blobs.map((b) => results.get(b.descriptor.digest)!).filter((b, i, all) => all.indexOf(b) === i);
  return {
    ref: formatReference({ ...ref, digest: undefined }),
    digest,
    blobs: ordered,
    uploadedBytes: ordered.filter((b) => b.action === 'uploaded').reduce((n, b) => n + b.size, 0),
    seconds: (performance.now() - started) / 1000,
  };
}

function partName(d: OciDescriptor): string {
  const part = d.annotations?.[PART_ANNOTATION];
  const name = d.annotations?.[PART_NAME_ANNOTATION];
  return part ? ` (${part}${name && name !== part ? ` ${name}` : ''})` : '';
}

/** One blob to push: what the manifest says of it, and its bytes. */
interface BlobToPush {
  descriptor: OciDescriptor;
  what: string;
  open(): Promise<NodeJS.ReadableStream>;
}

async function pushBlob(
  client: RegistryClient, blob: BlobToPush, mountFrom: string[], known: KnownBlobs | undefined, options: PushOptions,
): Promise<PushedBlob> {
  const { descriptor: d, what } = blob;
  const base = { what, digest: d.digest, size: d.size };
  const head = await client.send({ method: 'HEAD', url: client.path(`/blobs/${d.digest}`), what: `checking ${what}`, expect: [200, 404] });
  await discardBody(head);
  if (head.status === 200) return { ...base, action: 'exists' };

  const remembered = known ? await known.repositoriesWith(client.ref.registry, d.digest) : [];
  const candidates = [...new Set([...mountFrom, ...remembered])].filter((r) => r !== client.repository);
  const registry = client.ref.registry;
  return withRetries(client.attempts, `uploading ${what} ${d.digest}`, registry, options.log ?? (() => {}), async () => {
    let location: string | undefined;
    for (const from of candidates.slice(0, 3)) {
      const mount = await client.send({
        method: 'POST', url: client.path(`/blobs/uploads/?mount=${encodeURIComponent(d.digest)}&from=${encodeURIComponent(from)}`),
        what: `mounting ${what} from ${from}`, expect: [201, 202], retry: false, headers: { 'Content-Length': 0 },
      });
      await discardBody(mount);
      if (mount.status === 201) return { ...base, action: 'mounted' as const, from };
      location = mount.headers.location; // the registry started a plain upload instead
      if (location) break;
    }
    if (!location) {
      const start = await client.send({ method: 'POST', url: client.path('/blobs/uploads/'), what: `starting the upload of ${what}`, expect: [202], retry: false, headers: { 'Content-Length': 0 } });
      await discardBody(start);
      location = start.headers.location;
      if (!location) throw new Error(`starting the upload of ${what}: the registry gave no Location`);
    }
    const url = new URL(location, client.baseUrl);
    url.searchParams.set('digest', d.digest);
    const put = await client.send({
      method: 'PUT', url: url.toString(), what: `uploading ${what} ${d.digest}`, expect: [201, 204], retry: false,
      headers: { 'Content-Type': 'application/octet-stream', 'Content-Length': d.size },
      body: () => blob.open(),
      onBodyProgress: (bytes) => options.onProgress?.(what, bytes, d.size),
    });
    await discardBody(put);
    return { ...base, action: 'uploaded' as const };
  });
}

async function readAll(stream: NodeJS.ReadableStream): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const chunk of stream) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks);
}

function tryParse(text: string): ImageReference | undefined {
  try {
    return parseReference(text);
  } catch {
    return undefined;
  }
}

export interface IndexPushResult extends PushResult {
  /** One entry per platform image, each pushed by digest before the index. */
  platforms: (PushResult & { platform: string })[];
}

/**
 * Pushes what `source` came from: a single image, or, when it was picked from a multi-platform index in a local
 * layout, every platform's image (by digest) and then the index under the tag, so the tag never names an
 * index whose images are missing.
 */
export async function pushAny(source: OpenedImage, target: string | ImageReference, options: PushOptions = {}): Promise<PushResult | IndexPushResult> {
  if (!source.index) {
    const pushed = await pushImage(source, target, options);
    // The layout's artifacts that refer to the image (its SBOM) go once the image is there: a referrer's subject must exist.
    const referrers = await layoutReferrers(source);
    if (!referrers.length) return pushed;
    const ref = typeof target === 'string' ? parseReference(target) : target;
    const sent: PushedReferrer[] = [];
    for (const r of referrers) sent.push(await pushReferrer({ ...ref, tag: undefined, digest: undefined }, r, options.log));
    return { ...pushed, referrers: sent };
  }
  const started = performance.now();
  const ref = typeof target === 'string' ? parseReference(target) : target;
  const platforms: IndexPushResult['platforms'] = [];
  const artifacts: { referrers: Referrer[] }[] = [];
  for (const m of source.index.manifests) {
    const p = m.platform!;
    const platform = `${p.os}/${p.architecture}${p.variant ? `/${p.variant}` : ''}`;
    options.log?.(`pushing the ${platform} image`);
    const one = await openImage(source.ref, { platform: p });
    try {
      platforms.push({ ...(await pushImage(one, { ...ref, tag: undefined, digest: m.digest }, options)), platform });
      artifacts.push({ referrers: await layoutReferrers(one) });
    } finally {
      await one.close();
    }
  }
  const indexBytes = await readAll(await source.openBlob(source.index.digest));
  const client = new RegistryClient(ref, { actions: 'pull,push', onRetry: options.log });
  const res = await client.send({
    method: 'PUT', url: client.path(`/manifests/${manifestReference(ref)}`), what: 'putting the image index',
    headers: { 'Content-Type': MEDIA_TYPE_INDEX }, body: () => indexBytes, expect: [200, 201],
  });
  await discardBody(res);
  // Each platform image's referrers (its SBOM), once the images and the index are there.
  const referrers: PushedReferrer[] = [];
  for (const { referrers: list } of artifacts) for (const r of list) referrers.push(await pushReferrer({ ...ref, tag: undefined, digest: undefined }, r, options.log));
  const blobs = platforms.flatMap((p) => p.blobs);
  return {
    ...(referrers.length ? { referrers } : {}),
    ref: formatReference({ ...ref, digest: undefined }), digest: sha256Digest(indexBytes), blobs,
    uploadedBytes: platforms.reduce((n, p) => n + p.uploadedBytes, 0), seconds: (performance.now() - started) / 1000, platforms,
  };
}
