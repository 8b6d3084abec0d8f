import { stat } from 'node:fs/promises';
import { posix } from 'node:path';
import { pipeline, Readable } from 'node:stream';
import { pipeline as pipelineAsync } from 'node:stream/promises';
import { createGunzip } from 'node:zlib';
import tarStream from 'tar-stream';
import { JSON_DOCUMENT_LIMIT, readLimited, type BlobAccess } from './blob-access.ts';
import { ByteCounter } from './byte-counter.ts';
import { canonicalJson } from './canonical-json.ts';
import { HashingStream, VerifyingStream, blobFailure, isDigest, sha256Digest } from './digest.ts';
import { uncompressedLayer } from './layer-stream.ts';
import type { Image } from './image.ts';
import type { Layer } from './layer.ts';
import { EntrySafetyScan, type UnsafeEntryReport } from './entry-safety-scan.ts';
import { UnpackedBytesBudget, unpackLimitsFromEnv, whiteout, type Whiteout } from './tar-entry-rules.ts';
import { LayoutAccess } from './layout-access.ts';
import {
  ANNOTATION_REF_NAME, MEDIA_TYPE_CONFIG, MEDIA_TYPE_DOCKER_MANIFEST, MEDIA_TYPE_DOCKER_MANIFEST_LIST,
  MEDIA_TYPE_INDEX, MEDIA_TYPE_LAYER_TAR, MEDIA_TYPE_LAYER_TAR_GZIP, MEDIA_TYPE_MANIFEST, isLayerGzip,
  type DockerArchiveManifestEntry, type OciDescriptor, type OciImageConfig, type OciIndex, type OciManifest,
} from './oci.ts';
import { TarballAccess } from './tarball-access.ts';
import { hostPlatform } from './pyml-format/platform.ts';

export interface VerifyResult {
  digest: string;
  /** What was checked: 'manifest', 'config', 'layer 2', 'layer 2 diffId'. */
  what: string;
  ok: boolean;
  /** The digest the bytes actually hash to, when they could be read. */
  actual?: string;
  /** Why the bytes could not be checked (missing blob, corrupt gzip). */
  error?: string;
  /** For 'layer N entries': the entries unpack would refuse, strip or skip (ok is false when there is any). */
  unsafeEntries?: UnsafeEntryReport[];
}

/**
 * An image opened from a layout or a tarball: the one Image value (its layers open their bytes checked against
 * their digests), plus what reading it takes. Reading an image is reading untrusted input: every blob is checked.
 */
export interface OpenedImage extends Image {
  ref: string;
  kind: 'layout' | 'tarball';
  /** When the image was picked from a multi-platform image index: that index and every platform it lists. */
  index?: { digest: string; manifests: OciDescriptor[] };
  /**
   * Artifacts the layout's index.json lists beside its image (OCI 1.1 referrers, e.g. an SBOM with the image as
   * their `subject`): candidates only, a reader checks each artifact manifest's subject.
   */
  artifacts?: OciDescriptor[];
  /** The blob's bytes; the stream errors at its end if they do not hash to `digest`. */
  openBlob(digest: string): Promise<NodeJS.ReadableStream>;
  /** A small file from the merged filesystem (top layer wins, whiteouts honoured), or undefined. */
  readFile(pathInImage: string): Promise<Buffer | undefined>;
  /**
   * Re-hashes the manifest, the config and every layer (compressed digest and diffId), and checks every layer's
   * entries against unpack's rules (one 'layer N entries' result per layer, after the hashes).
   */
  verify(): Promise<VerifyResult[]>;
  close(): Promise<void>;
}

/** Files bigger than this are not "small files"; readFile refuses them rather than fill memory. */
const READ_FILE_LIMIT = 64 * 1024 * 1024;
const TRANSPORT_PREFIXES = ['oci:', 'oci-archive:', 'docker-archive:'];

export interface OpenImageOptions {
  /** Which image of a multi-platform index (default: this machine's platform). */
  platform?: { os: string; architecture: string; variant?: string };
}

/**
 * Opens an OCI layout directory or an image tarball (an OCI layout in a tar, or a docker-archive with
 * `manifest.json`). `PATH:NAME` picks the manifest whose ref name is NAME when a layout holds several.
 * skopeo-style `oci:`, `oci-archive:` and `docker-archive:` prefixes are accepted.
 */
export async function openImage(ref: string, options: OpenImageOptions = {}): Promise<OpenedImage> {
  try {
    const { path, refName } = await splitRef(ref);
    const info = await stat(path);
    if (info.isDirectory()) return await openLayout(ref, new LayoutAccess(path), refName, options.platform);
    if (info.isFile()) return await openTarball(ref, path, refName);
    throw new Error('neither a directory nor a file');
  } catch (error) {
    const message = (error as Error).message;
    throw new Error(message.startsWith(`image ${ref}: `) ? message : `image ${ref}: ${message}`);
  }
}

async function splitRef(ref: string): Promise<{ path: string; refName?: string }> {
  let path = ref;
  for (const prefix of TRANSPORT_PREFIXES) if (path.startsWith(prefix)) path = path.slice(prefix.length);
  if (await exists(path)) return { path };
  const match = /^(.*):([^:/]+)$/.exec(path);
  if (match && (await exists(match[1]))) return { path: match[1], refName: match[2] };
  throw new Error(`no such file or directory: ${path}`);
}

async function exists(path: string): Promise<boolean> {
  return stat(path).then(() => true, () => false);
}

async function openLayout(ref: string, access: LayoutAccess | TarballAccess, refName: string | undefined, platform?: OpenImageOptions['platform']): Promise<OpenedImage> {
  const kind = access instanceof LayoutAccess ? 'layout' : 'tarball';
  const indexBytes = access instanceof LayoutAccess ? await access.readRootFile('index.json') : await access.readMember('index.json');
  if (!indexBytes) throw new Error('no index.json: not an OCI image layout');
  const index = parseJson<OciIndex>(indexBytes, 'index.json');
  if (!Array.isArray(index.manifests)) throw new Error('index.json has no "manifests" array');
  // Artifacts (an SBOM referring to the image) sit beside the image in index.json; they are not images to pick.
  const artifacts = index.manifests.filter((d) => d && typeof d === 'object' && typeof d.artifactType === 'string');
  const images = index.manifests.filter((d) => !artifacts.includes(d));
  const withArtifacts = (source: OpenedImage): OpenedImage => (artifacts.length ? { ...source, artifacts } : source);
  let descriptor = pickManifest(images, refName, 'index.json');
  // One level of nesting (a layout holding an image index): follow it when it names a single image.
  if (descriptor.mediaType === MEDIA_TYPE_INDEX || descriptor.mediaType === MEDIA_TYPE_DOCKER_MANIFEST_LIST) {
    const nested = parseJson<OciIndex>(await readVerified(access, descriptor, 'nested image index'), 'nested image index');
    if (!Array.isArray(nested.manifests)) throw new Error(`nested index ${descriptor.digest} has no "manifests" array`);
    if (nested.manifests.length > 1 && nested.manifests.every((m) => m?.platform)) {
      // A multi-platform image: pick the wanted platform's manifest and keep the index for callers to show.
      const want = platform ?? hostPlatform();
      const indexDescriptor = descriptor;
      const chosen = nested.manifests.filter((m) => m.platform!.os === want.os && m.platform!.architecture === want.architecture
        && (!('variant' in want) || !want.variant || m.platform!.variant === want.variant));
      if (chosen.length !== 1) {
        const has = nested.manifests.map((m) => `${m.platform!.os}/${m.platform!.architecture}${m.platform!.variant ? `/${m.platform!.variant}` : ''}`).join(', ');
        throw new Error(`image index ${descriptor.digest} has ${chosen.length ? 'several' : 'no'} ${want.os}/${want.architecture} images (it has: ${has})`);
      }
      descriptor = checkDescriptor(chosen[0], `nested index ${descriptor.digest}`);
      const source = await createSource(ref, kind, access, descriptor.digest, await readVerified(access, descriptor, 'manifest'));
      return withArtifacts({ ...source, index: { digest: indexDescriptor.digest, manifests: nested.manifests } });
    }
    descriptor = pickManifest(nested.manifests, undefined, `nested index ${descriptor.digest}`);
  }
  if (descriptor.mediaType !== MEDIA_TYPE_MANIFEST && descriptor.mediaType !== MEDIA_TYPE_DOCKER_MANIFEST) {
    throw new Error(`manifest ${descriptor.digest} has unsupported media type ${descriptor.mediaType}`);
  }
  const manifestBytes = await readVerified(access, descriptor, 'manifest');
  return withArtifacts(await createSource(ref, kind, access, descriptor.digest, manifestBytes));
}

function pickManifest(manifests: OciDescriptor[], refName: string | undefined, where: string): OciDescriptor {
  const describe = (d: OciDescriptor) => d.annotations?.[ANNOTATION_REF_NAME] ?? d.digest;
  if (refName !== undefined) {
    const named = manifests.filter((d) => d.annotations?.[ANNOTATION_REF_NAME] === refName);
    if (named.length !== 1) {
      throw new Error(`${where} has ${named.length === 0 ? 'no' : 'several'} manifests named "${refName}" (it has: ${manifests.map(describe).join(', ') || 'none'})`);
    }
    return checkDescriptor(named[0], where);
  }
  if (manifests.length !== 1) {
    throw new Error(`${where} lists ${manifests.length} manifests; name one as PATH:REF (it has: ${manifests.map(describe).join(', ') || 'none'})`);
  }
  return checkDescriptor(manifests[0], where);
}

function checkDescriptor(d: OciDescriptor, where: string): OciDescriptor {
  if (!d || typeof d !== 'object') throw new Error(`${where}: a descriptor is not an object`);
  if (!isDigest(d.digest)) throw new Error(`${where}: descriptor digest ${JSON.stringify(d.digest)} is not a sha256 digest`);
  if (!Number.isSafeInteger(d.size) || d.size < 0) throw new Error(`${where}: descriptor ${d.digest} has an invalid size`);
  if (typeof d.mediaType !== 'string') throw new Error(`${where}: descriptor ${d.digest} has no mediaType`);
  return d;
}

async function readVerified(access: BlobAccess, d: OciDescriptor, what: string): Promise<Buffer> {
  if (d.size > JSON_DOCUMENT_LIMIT) throw new Error(`${what} ${d.digest} is ${d.size} bytes, more than a ${what} should be`);
  const check = new VerifyingStream(d.digest, `${what} ${d.digest}`, d.size);
  pipeline(await access.open(d.digest), check, () => {}); // errors reach `check`, and so readLimited
  return readLimited(check, JSON_DOCUMENT_LIMIT, `${what} ${d.digest}`);
}

function parseJson<T>(bytes: Buffer, what: string): T {
  try {
    const value = JSON.parse(bytes.toString('utf8'));
    if (value === null || typeof value !== 'object') throw new Error('not a JSON object');
    return value as T;
  } catch (error) {
    throw new Error(`${what} is not valid JSON: ${(error as Error).message}`);
  }
}

async function openTarball(ref: string, file: string, refName: string | undefined): Promise<OpenedImage> {
  const access = await TarballAccess.index(file);
  if (access.has('index.json')) return openLayout(ref, access, refName);
  if (access.has('manifest.json')) return openDockerArchive(ref, access, refName);
  throw new Error('tarball has neither index.json (OCI layout) nor manifest.json (docker-archive)');
}

/**
 * A docker-archive without an OCI index: its config and layers are named by path, so their descriptors are
 * synthesised by hashing them, and the manifest is built from those descriptors.
 */
async function openDockerArchive(ref: string, access: TarballAccess, refName: string | undefined): Promise<OpenedImage> {
  const entries = parseJson<DockerArchiveManifestEntry[]>((await access.readMember('manifest.json'))!, 'manifest.json');
  if (!Array.isArray(entries)) throw new Error('manifest.json is not an array');
  const chosen = refName === undefined
    ? entries
    : entries.filter((e) => (e.RepoTags ?? []).some((tag) => tag === refName || tag.endsWith(`:${refName}`)));
  if (chosen.length !== 1) {
    const tags = entries.map((e) => (e.RepoTags ?? []).join('|') || e.Config).join(', ');
    throw new Error(`manifest.json has ${chosen.length} matching images${refName ? ` for "${refName}"` : ''}; name one as PATH:TAG (it has: ${tags})`);
  }
  const entry = chosen[0];
  if (typeof entry.Config !== 'string' || !Array.isArray(entry.Layers)) throw new Error('manifest.json entry lacks Config or Layers');
  const describe = async (name: string, mediaTypeFor: (firstBytes: Buffer) => string): Promise<OciDescriptor> => {
    if (!access.has(name)) throw new Error(`manifest.json names ${name}, which the tarball does not contain`);
    const hash = new HashingStream();
    let head = Buffer.alloc(0);
    await pipelineAsync(access.openMember(name), hash, async function* (chunks) {
      for await (const chunk of chunks) if (head.length < 2) head = Buffer.concat([head, chunk as Buffer]);
    });
    const digest = hash.digest();
    access.alias(digest, name);
    return { mediaType: mediaTypeFor(head), digest, size: hash.bytes };
  };
  const config = await describe(entry.Config, () => MEDIA_TYPE_CONFIG);
  const layers: OciDescriptor[] = [];
  for (const name of entry.Layers) {
    layers.push(await describe(name, (head) => (head[0] === 0x1f && head[1] === 0x8b ? MEDIA_TYPE_LAYER_TAR_GZIP : MEDIA_TYPE_LAYER_TAR)));
  }
  const manifest: OciManifest = { schemaVersion: 2, mediaType: MEDIA_TYPE_MANIFEST, config, layers };
  const manifestBytes = Buffer.from(canonicalJson(manifest));
  const manifestDigest = sha256Digest(manifestBytes);
  const synthesised: BlobAccess & { bytes: Buffer } = {
    bytes: manifestBytes,
    size: async (digest) => (digest === manifestDigest ? manifestBytes.length : access.size(digest)),
    open: async (digest) => (digest === manifestDigest ? Readable.from([manifestBytes]) : access.open(digest)),
    close: () => access.close(),
  };
  return createSource(ref, 'tarball', synthesised, manifestDigest, manifestBytes);
}

async function createSource(ref: string, kind: 'layout' | 'tarball', access: BlobAccess, manifestDigest: string, manifestBytes: Buffer): Promise<OpenedImage> {
  const manifest = parseJson<OciManifest>(manifestBytes, `manifest ${manifestDigest}`);
  if (manifest.schemaVersion !== 2) throw new Error(`manifest ${manifestDigest}: schemaVersion is not 2`);
  if (!Array.isArray(manifest.layers)) throw new Error(`manifest ${manifestDigest}: no "layers" array`);
  const configDescriptor = checkDescriptor(manifest.config, `manifest ${manifestDigest} config`);
  const layers = manifest.layers.map((d, i) => checkDescriptor(d, `manifest ${manifestDigest} layer ${i}`));
  const configBytes = await readVerified(access, configDescriptor, 'config');
  const config = parseJson<OciImageConfig>(configBytes, `config ${configDescriptor.digest}`);
  const diffIds = config.rootfs?.diff_ids;
  if (!Array.isArray(diffIds) || diffIds.length !== layers.length || !diffIds.every(isDigest)) {
    throw new Error(`config ${configDescriptor.digest}: rootfs.diff_ids must list one sha256 digest per layer (${layers.length})`);
  }

  const descriptorOf = new Map<string, OciDescriptor>([[configDescriptor.digest, configDescriptor]]);
  for (const d of layers) descriptorOf.set(d.digest, d);

  const layerValues = layers.map((d, i): Layer => ({
    mediaType: d.mediaType, digest: d.digest, diffId: diffIds[i], size: d.size, annotations: d.annotations ?? {},
    openBlob: async () => (await openBlob(d.digest)) as Readable,
    openTar: async () => uncompressedLayer((await openBlob(d.digest)) as Readable, d, diffIds[i], `image ${ref}: layer ${d.digest}`),
  }));

  async function openBlob(digest: string): Promise<NodeJS.ReadableStream> {
    if (!isDigest(digest)) throw new Error(`image ${ref}: not a sha256 digest: ${JSON.stringify(digest)}`);
    const expectedSize = digest === manifestDigest ? manifestBytes.length : descriptorOf.get(digest)?.size;
    let raw: Readable;
    try {
      raw = await access.open(digest);
    } catch (error) {
      throw new Error(`image ${ref}: ${(error as Error).message}`);
    }
    const check = new VerifyingStream(digest, `image ${ref}: blob ${digest}`, expectedSize);
    pipeline(raw, check, () => {});
    return check;
  }

  async function layerTar(index: number): Promise<Readable> {
    const d = layers[index];
    const tar = await layerValues[index].openTar();
    // Reading a file scans whole layers: a compression bomb stops at unpack's size limit here too.
    const count = new UnpackedBytesBudget(unpackLimitsFromEnv()).layer(d.digest, d.size, isLayerGzip(d.mediaType));
    const limited = new ByteCounter((n) => {
      try {
        count(n);
      } catch (error) {
        throw new Error(`image ${ref}: ${(error as Error).message}`);
      }
    });
    pipeline(tar, limited, () => {});
    return limited;
  }

  async function readFile(pathInImage: string, depth = 0): Promise<Buffer | undefined> {
    if (depth > 16) throw new Error(`image ${ref}: too many symlinks resolving ${pathInImage}`);
    const target = posix.normalize('/' + pathInImage).slice(1);
    if (target === '') return undefined;
    for (let i = layers.length - 1; i >= 0; i--) {
      const what = `image ${ref}: layer ${layers[i].digest}`;
      let found: Found;
      try {
        found = await findInLayer(await layerTar(i), target, what);
      } catch (error) {
        const message = (error as Error).message;
        if (message.startsWith(`image ${ref}: `)) throw error;
        throw (await blobFailure(() => openBlob(layers[i].digest))) ?? new Error(`${what}: ${message}`);
      }
      if (found.kind === 'file') return found.content;
      if (found.kind === 'symlink') return readFile(posix.resolve('/' + posix.dirname(target), found.linkTarget), depth + 1);
      if (found.kind === 'hardlink') return readFile('/' + found.linkTarget, depth + 1);
      if (found.kind === 'hidden' || found.kind === 'other') return undefined;
    }
    return undefined;
  }

  async function verify(): Promise<VerifyResult[]> {
    const results: VerifyResult[] = [];
    results.push(await hashCheck(manifestDigest, 'manifest', () => access.open(manifestDigest)));
    results.push(await hashCheck(configDescriptor.digest, 'config', () => access.open(configDescriptor.digest)));
    const scan = new EntrySafetyScan();
    const budget = new UnpackedBytesBudget(unpackLimitsFromEnv());
    for (const [i, d] of layers.entries()) results.push(...(await checkLayer(i, d, scan, budget)));
    await scan.finish();
    for (const [i, d] of layers.entries()) {
      const unsafeEntries = scan.reports.filter((r) => r.layer === i);
      results.push({ digest: d.digest, what: `layer ${i} entries`, ok: unsafeEntries.length === 0, ...(unsafeEntries.length ? { unsafeEntries } : {}) });
    }
    return results;
  }

  /**
   * One read of the blob hashes both forms, the stored bytes (digest) and the uncompressed tar (diffId), and scans
   * its entries. A layer past its size limit is not read further: its diffId is then reported unchecked.
   */
  async function checkLayer(i: number, d: OciDescriptor, scan: EntrySafetyScan, budget: UnpackedBytesBudget): Promise<VerifyResult[]> {
    const diffId = diffIds![i];
    const blobHash = new HashingStream();
    const diffHash = new HashingStream();
    const count = budget.layer(d.digest, d.size, isLayerGzip(d.mediaType));
    let tooBig: Error | undefined;
    const counter = new ByteCounter(count, (error) => {
      tooBig = error;
    });
    const extract = tarStream.extract();
    try {
      const stages: NodeJS.ReadWriteStream[] = [blobHash, ...(isLayerGzip(d.mediaType) ? [createGunzip()] : []), counter, diffHash];
      const piped = pipelineAsync(await access.open(d.digest), ...(stages as [NodeJS.ReadWriteStream]), extract as unknown as NodeJS.WritableStream);
      piped.catch(() => {});
      try {
        await scan.scanLayer(i, d.digest, extract);
      } catch (error) {
        extract.destroy(error as Error);
        await piped.catch(() => {});
        throw error;
      }
      await piped;
      return [
        verdict(d.digest, `layer ${i}`, blobHash.digest()),
        verdict(diffId, `layer ${i} diffId`, diffHash.digest()),
      ];
    } catch (error) {
      if (tooBig) scan.report(i, d.digest, '', tooBig.message);
      // Unreadable, not decompressible or too big: still say whether the stored bytes match their digest.
      return [
        await hashCheck(d.digest, `layer ${i}`, () => access.open(d.digest)),
        { digest: diffId, what: `layer ${i} diffId`, ok: false, error: tooBig ? `not checked: ${tooBig.message}` : (error as Error).message },
      ];
    }
  }

  return {
    ref, kind, manifestDigest, manifest, manifestBytes, config, configBytes, layers: layerValues,
    openBlob,
    readFile: (path) => readFile(path),
    verify,
    close: () => access.close(),
  };
}

/** Hashes one blob and reports whether it matches. */
async function hashCheck(digest: string, what: string, open: () => Promise<Readable>): Promise<VerifyResult> {
  try {
    const hash = new HashingStream();
    await pipelineAsync(await open(), hash, drain);
    return verdict(digest, what, hash.digest());
  } catch (error) {
    return { digest, what, ok: false, error: (error as Error).message };
  }
}

function verdict(digest: string, what: string, actual: string): VerifyResult {
  return { digest, what, ok: actual === digest, actual };
}

/** The end of a pipeline that only hashes. */
async function drain(chunks: AsyncIterable<unknown>): Promise<void> {
  for await (const _ of chunks);
}

type Found =
  | { kind: 'absent' }
  | { kind: 'hidden' }
  | { kind: 'other' }
  | { kind: 'file'; content: Buffer }
  | { kind: 'symlink'; linkTarget: string }
  | { kind: 'hardlink'; linkTarget: string };

/**
 * Looks for `target` in one layer's tar. Reads the layer to its end even after a hit, so its digest and diffId
 * are checked before the content is returned.
 */
async function findInLayer(tar: Readable, target: string, what: string): Promise<Found> {
  const extract = tarStream.extract();
  const done = new Promise<void>((resolve, reject) => pipeline(tar, extract, (error) => (error ? reject(error) : resolve())));
  done.catch(() => {});
  // A digest mismatch or corrupt gzip surfaces in the entry being read as a bare "destroyed"; keep the cause.
  let cause: Error | undefined;
  tar.on('error', (error) => (cause ??= error));
  try {
    return await scanLayer(extract, done, target, what);
  } catch (error) {
    throw cause ?? error;
  }
}

async function scanLayer(extract: tarStream.Extract, done: Promise<void>, target: string, what: string): Promise<Found> {
  let found: Found = { kind: 'absent' };
  let opaqueAncestor = false;
  const ancestors = new Set<string>();
  for (let dir = posix.dirname(target); dir !== '.'; dir = posix.dirname(dir)) ancestors.add(dir);
  for await (const entry of extract) {
    const name = posix.normalize(entry.header.name).replace(/^\.?\/+/, '').replace(/\/+$/, '');
    const base = posix.basename(name);
    const dir = posix.dirname(name);
    if (name === target) {
      const h = entry.header;
      if (h.type === 'file' || h.type === 'contiguous-file') {
        if (h.size > READ_FILE_LIMIT) throw new Error(`${what}: ${target} is ${h.size} bytes, too big to read into memory`);
        found = { kind: 'file', content: await readLimited(entry, READ_FILE_LIMIT, `${what}: ${target}`) };
        continue;
      }
      if (h.type === 'symlink') found = { kind: 'symlink', linkTarget: h.linkname };
      else if (h.type === 'link') found = { kind: 'hardlink', linkTarget: h.linkname };
      else found = { kind: 'other' };
    } else if (base.startsWith('.wh.')) {
      // The whiteout rules unpack applies: one that names ".", ".." or nothing is refused, not read as hiding a parent.
      let rule: Whiteout | undefined;
      try {
        rule = whiteout(base);
      } catch (error) {
        throw new Error(`${what}: entry ${JSON.stringify(entry.header.name)}: ${(error as Error).message}`);
      }
      if (rule?.kind === 'opaque' && (dir === '.' || ancestors.has(dir))) opaqueAncestor = true;
      if (rule?.kind === 'hide' && found.kind === 'absent') {
        const hidden = posix.join(dir, rule.name);
        if (hidden === target || ancestors.has(hidden)) found = { kind: 'hidden' };
      }
    }
    entry.resume();
  }
  await done;
  if (found.kind === 'absent' && opaqueAncestor) return { kind: 'hidden' };
  return found;
}
