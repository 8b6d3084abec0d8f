import { createHash } from 'node:crypto';
import { createServer, type IncomingMessage } from 'node:http';
import { readFileSync } from 'node:fs';
import { cp, mkdtemp, readFile, realpath, rm, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { Spec, Validation } from '@cyclonedx/cyclonedx-library';
import { Ajv } from 'ajv';
import addFormatsModule from 'ajv-formats';
import { appendLayers, BlobStore, buildLayer, emptyImage, openImage, withConfig, writeLayout } from '@pyml/image';
import { layoutReferrers, pushReferrer, parseReference } from '@pyml/registry';
import { parseJson, pyml, REPO } from '../helpers/cli.ts';
import { startRegistry } from '../helpers/registry-server.ts';

/**
 * `pyml sbom` and `pyml build --sbom` on real images: the CycloneDX form passes the CycloneDX project's own strict
 * 1.6 validator, the SPDX form the SPDX 2.3 JSON schema (vendored in spdx-2.3/, see SOURCE.md); their contents are
 * checked against the files themselves (node's sha256, the weights' sha256, the lockfile's integrity). The SBOM
 * travels as an OCI referrer: in the layout, to Debian's docker-registry by the tag schema, and (what is sent) to a
 * registry that has the referrers API.
 */

const addFormats = addFormatsModule as unknown as (ajv: Ajv) => Ajv;
const ajv = addFormats(new Ajv({ allErrors: true, strict: false }));
const validateSpdx = ajv.compile(JSON.parse(await readFile(path.join(REPO, 'test/sbom/spdx-2.3/spdx-schema.json'), 'utf8')));
const schemaOf = (name: string) => new Ajv({ allErrors: true, strict: true }).compile(JSON.parse(readFileSync(path.join(REPO, 'schemas', name), 'utf8')));

interface CdxComponent { type: string; name: string; group?: string; version?: string; purl?: string; hashes?: { alg: string; content: string }[]; licenses?: unknown[]; properties: { name: string; value: string }[]; evidence?: { occurrences: { location: string }[] } }
interface Cdx { components: CdxComponent[]; metadata: { component: { hashes: { content: string }[] } } }

let work: string;
let layout: string;
let built: { digest: string; sbom: { digest: string; artifactType: string; size: number } };

const sha256File = async (file: string) => createHash('sha256').update(await readFile(file)).digest('hex');

async function assertCycloneDx(text: string, what: string): Promise<void> {
  const errors = await new Validation.JsonStrictValidator(Spec.Version.v1dot6).validate(text);
  assert.is(errors, null, `${what}: CycloneDX 1.6 strict validation: ${JSON.stringify(errors)?.slice(0, 2000)}`);
}

function assertSpdx(value: unknown, what: string): void {
  if (!validateSpdx(value)) assert.unreachable(`${what}: SPDX 2.3 schema: ${ajv.errorsText(validateSpdx.errors)}`);
}

test.before(async () => {
  work = await mkdtemp(path.join(tmpdir(), 'pyml-sbom-'));
  layout = path.join(work, 'iris');
  const r = await pyml(['build', 'examples/onnx-iris', '--out', layout, '--sbom', '--json']);
  assert.is(r.code, 0, r.stderr);
  built = parseJson(r) as typeof built;
  const validate = schemaOf('build-output.schema.json');
  if (!validate(built)) assert.unreachable(`build --sbom --json: ${JSON.stringify(validate.errors)}`);
});

test.after(async () => {
  await rm(work, { recursive: true, force: true });
});

test('iris: the CycloneDX SBOM is valid 1.6 and accounts for node, its libraries, the runtime packages, the bundles and the weights', async () => {
  const r = await pyml(['sbom', layout]);
  assert.is(r.code, 0, r.stderr);
  await assertCycloneDx(r.stdout, 'iris cyclonedx');
  const bom = JSON.parse(r.stdout) as Cdx;
  assert.is(bom.metadata.component.hashes[0]!.content, built.digest.slice('sha256:'.length));
  const part = (c: CdxComponent) => c.properties.find((p) => p.name === 'pyml:part')?.value;
  const byPurl = (prefix: string) => bom.components.filter((c) => c.purl?.startsWith(prefix));

  // node: the binary that built the image, by its own hash.
  const node = bom.components.find((c) => c.name === 'node' && part(c) === 'base')!;
  assert.ok(node, 'a node component in the base');
  assert.is(node.version, process.version.slice(1));
  assert.is(node.hashes!.find((h) => h.alg === 'SHA-256')!.content, await sha256File(await realpath(process.execPath)));
  // Each shared library node loads, hashed, from its Debian package; libc6 itself as a deb package with a purl.
  const libc = bom.components.find((c) => c.type === 'file' && c.name === 'libc.so.6')!;
  assert.ok(libc, 'libc.so.6 is listed as a file of the base');
  assert.is(libc.hashes![0]!.content, await sha256File(libc.evidence!.occurrences[0]!.location));
  assert.ok(libc.properties.some((p) => p.name === 'pyml:debian-package' && p.value.startsWith('libc6@')), 'libc.so.6 names its Debian package');
  assert.ok(byPurl('pkg:deb/debian/libc6@').some((c) => /\?arch=amd64$|\?arch=arm64$/.test(c.purl!)), 'libc6 as a deb package with its architecture');

  // The onnx plugin's runtime packages with their lockfile integrity as a SHA-512 hash.
  const lock = JSON.parse(await readFile(path.join(REPO, 'package-lock.json'), 'utf8')) as { packages: Record<string, { version?: string; integrity?: string }> };
  const ort = byPurl('pkg:npm/onnxruntime-node@').find((c) => part(c) === 'deps')!;
  assert.ok(ort, 'onnxruntime-node in the deps part');
  assert.is(ort.version, lock.packages['node_modules/onnxruntime-node']!.version);
  const sha512 = Buffer.from(lock.packages['node_modules/onnxruntime-node']!.integrity!.slice('sha512-'.length), 'base64').toString('hex');
  assert.is(ort.hashes!.find((h) => h.alg === 'SHA-512')!.content, sha512);
  // npm packages esbuild bundled into the runtime (grpc-js) and the model code (the contract), scope as the group.
  const grpc = bom.components.find((c) => c.group === '@grpc' && c.name === 'grpc-js' && part(c) === 'entrypoint')!;
  assert.ok(grpc, '@grpc/grpc-js bundled into the entrypoint');
  assert.is(grpc.purl, `pkg:npm/%40grpc/grpc-js@${lock.packages['node_modules/@grpc/grpc-js']!.version}`);
  assert.equal(grpc.licenses, [{ license: { id: 'Apache-2.0' } }]);
  assert.ok(bom.components.some((c) => c.group === '@pyml' && c.name === 'contract' && part(c) === 'model'), '@pyml/contract bundled into model.mjs');
  // The weights file, hashed.
  const weights = bom.components.find((c) => c.type === 'machine-learning-model')!;
  assert.is(weights.name, 'model.onnx');
  assert.is(weights.hashes![0]!.content, await sha256File(path.join(REPO, 'examples/onnx-iris/weights/model.onnx')));

  const counts: Record<string, number> = {};
  for (const c of bom.components) { const k = c.purl ? c.purl.slice(4, c.purl.indexOf('/')) : c.type; counts[k] = (counts[k] ?? 0) + 1; }
  console.log(`    iris SBOM components by kind: ${JSON.stringify(counts)}`);
  assert.ok(counts.npm! >= 10 && counts.deb! >= 3 && counts.file! >= 5, `counts ${JSON.stringify(counts)}`);
});

test('iris: the SPDX 2.3 document is valid and describes the same components', async () => {
  const r = await pyml(['sbom', layout, '--format', 'spdx', '--out', path.join(work, 'iris.spdx.json')]);
  assert.is(r.code, 0, r.stderr);
  const doc = JSON.parse(await readFile(path.join(work, 'iris.spdx.json'), 'utf8')) as { packages: { SPDXID: string; name: string; licenseDeclared: string; externalRefs?: { referenceLocator: string }[] }[]; relationships: unknown[] };
  assertSpdx(doc, 'iris spdx');
  const cdx = JSON.parse((await pyml(['sbom', layout])).stdout) as Cdx;
  assert.is(doc.packages.length, cdx.components.length + 1, 'the image and one package per component');
  assert.is(new Set(doc.packages.map((p) => p.SPDXID)).size, doc.packages.length, 'SPDX ids are unique');
  const grpc = doc.packages.find((p) => p.externalRefs?.some((e) => e.referenceLocator.startsWith('pkg:npm/%40grpc/grpc-js@')))!;
  assert.is(grpc.licenseDeclared, 'Apache-2.0');
});

test('the SBOM is the same bytes every time, and the one build --sbom stored is what pyml sbom writes', async () => {
  const [a, b] = await Promise.all([pyml(['sbom', layout]), pyml(['sbom', layout])]);
  assert.is(a.stdout, b.stdout);
  const source = await openImage(layout);
  try {
    const [referrer] = await layoutReferrers(source);
    assert.ok(referrer, 'the layout holds an artifact referring to the image');
    assert.is(referrer!.descriptor.digest, built.sbom.digest);
    assert.is(referrer!.manifest.artifactType, 'application/vnd.cyclonedx+json');
    assert.is(referrer!.manifest.subject!.digest, built.digest);
    assert.is(referrer!.blobs[1]!.bytes.toString('utf8'), a.stdout);
  } finally {
    await source.close();
  }
  const inspected = await pyml(['inspect', 'image', layout, '--json']);
  const description = parseJson(inspected) as { digest: string; sbom?: { digest: string }[] };
  assert.is(description.digest, built.digest, 'the artifact beside it does not stop the layout opening as the image');
  assert.equal(description.sbom?.map((s) => s.digest), [built.sbom.digest]);
  const validate = schemaOf('inspect-output.schema.json');
  if (!validate(description)) assert.unreachable(`inspect --json: ${JSON.stringify(validate.errors)}`);
  const text = await pyml(['inspect', 'image', layout]);
  assert.match(text.stdout, `sbom      attached: application/vnd.cyclonedx+json artifact ${built.sbom.digest}`);
  assert.match(text.stdout, /contents {2}\d+ components/);
});

test('push carries the SBOM to a registry without the referrers API by the sha256-<digest> tag index; inspect and sbom find it there', async () => {
  const registry = await startRegistry();
  try {
    const ref = `${registry.host}/iris:1.0.0`;
    const pushed = await pyml(['push', layout, ref, '--json']);
    assert.is(pushed.code, 0, pushed.stderr);
    const result = parseJson(pushed) as { referrers: { via: string; digest: string; tag: string }[] };
    const validate = schemaOf('push-output.schema.json');
    if (!validate(result)) assert.unreachable(`push --json: ${JSON.stringify(validate.errors)}`);
    const tag = `sha256-${built.digest.slice('sha256:'.length)}`;
    assert.equal(result.referrers, [{ artifactType: 'application/vnd.cyclonedx+json', digest: built.sbom.digest, via: 'tag-schema', tag }]);
    const log = registry.requests();
    assert.ok(log.some((q) => q.method === 'PUT' && q.path === `/v2/iris/manifests/${built.sbom.digest}` && q.status === 201), 'the artifact manifest was put by digest');
    assert.ok(log.some((q) => q.method === 'PUT' && q.path === `/v2/iris/manifests/${tag}` && q.status === 201), 'the tag index was put');

    const inspected = parseJson(await pyml(['inspect', 'image', ref, '--json'])) as { sbom?: { digest: string }[] };
    assert.equal(inspected.sbom?.map((s) => s.digest), [built.sbom.digest]);
    const fromRegistry = await pyml(['sbom', ref]);
    assert.is(fromRegistry.code, 0, fromRegistry.stderr);
    assert.is(fromRegistry.stdout, (await pyml(['sbom', layout])).stdout, 'the pushed image gives the same SBOM');
  } finally {
    await registry.stop();
  }
});

test('to a registry with the referrers API, the artifact goes by digest with its subject and no tag index is written', async () => {
  const seen: { method: string; url: string; body: Buffer }[] = [];
  const server = createServer(async (req: IncomingMessage, res) => {
    const chunks: Buffer[] = [];
    for await (const c of req) chunks.push(c as Buffer);
    const body = Buffer.concat(chunks);
    seen.push({ method: req.method!, url: req.url!, body });
    const url = new URL(req.url!, 'http://x');
    if (req.method === 'HEAD') return res.writeHead(404).end();
    if (req.method === 'POST') return res.writeHead(202, { Location: '/v2/iris/blobs/uploads/1' }).end();
    if (req.method === 'PUT' && url.pathname.startsWith('/v2/iris/blobs/uploads/')) return res.writeHead(201).end();
    if (req.method === 'PUT' && url.pathname.startsWith('/v2/iris/manifests/')) {
      // A registry with the referrers API says which subject it indexed the manifest under.
      const subject = (JSON.parse(body.toString('utf8')) as { subject?: { digest: string } }).subject?.digest;
      return res.writeHead(201, subject ? { 'OCI-Subject': subject } : {}).end();
    }
    res.writeHead(404).end();
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as { port: number };
  const source = await openImage(layout);
  try {
    const [referrer] = await layoutReferrers(source);
    const pushed = await pushReferrer(parseReference(`127.0.0.1:${port}/iris`), referrer!);
    assert.equal(pushed, { artifactType: 'application/vnd.cyclonedx+json', digest: built.sbom.digest, via: 'referrers-api' });
    const manifestPut = seen.find((s) => s.method === 'PUT' && s.url === `/v2/iris/manifests/${built.sbom.digest}`)!;
    assert.ok(manifestPut, 'the artifact manifest was put by its digest');
    const sent = JSON.parse(manifestPut.body.toString('utf8')) as { artifactType: string; subject: { digest: string }; layers: { digest: string }[] };
    assert.is(sent.subject.digest, built.digest);
    assert.is(sent.artifactType, 'application/vnd.cyclonedx+json');
    assert.ok(seen.some((s) => s.method === 'PUT' && s.url.includes(`digest=${encodeURIComponent(sent.layers[0]!.digest)}`)), 'the SBOM blob was uploaded');
    assert.not.ok(seen.some((s) => s.url.includes('/manifests/sha256-')), 'no tag-schema index is read or written');
  } finally {
    await source.close();
    server.close();
  }
});

test("PyTorch: the Python environment's Debian packages (with architecture and DEP-5 licence) and the system libraries it carries are in both forms", async () => {
  const out = path.join(work, 'mlp');
  const r = await pyml(['build', 'examples/pytorch-mlp', '--out', out, '--sbom', '--json']);
  assert.is(r.code, 0, r.stderr);
  const cdxText = (await pyml(['sbom', out])).stdout;
  await assertCycloneDx(cdxText, 'pytorch cyclonedx');
  const spdxDoc = JSON.parse((await pyml(['sbom', out, '--format', 'spdx'])).stdout);
  assertSpdx(spdxDoc, 'pytorch spdx');
  const bom = JSON.parse(cdxText) as Cdx;
  const layerOf = (c: CdxComponent) => c.properties.find((p) => p.name === 'pyml:layer')?.value;
  const torch = bom.components.find((c) => c.name === 'python3-torch')!;
  assert.ok(torch, 'python3-torch is listed');
  assert.is(layerOf(torch), 'python');
  const arch = process.arch === 'arm64' ? 'arm64' : 'amd64';
  assert.ok(torch.purl!.startsWith('pkg:deb/debian/python3-torch@') && torch.purl!.endsWith(`?arch=${arch}`), torch.purl);
  assert.equal(torch.licenses, [{ license: { id: 'BSD-3-Clause' } }], 'from its DEP-5 copyright file');
  // Libraries the environment's native modules load, beyond the packages the plugin lists (torch's BLAS, say).
  // Libraries the environment's native modules load (dpkg -S on each), beyond the Python packages the plugin lists:
  // each with the files of it the layer carries.
  const libraries = bom.components.filter((c) => layerOf(c) === 'python' && c.purl?.startsWith('pkg:deb/') && /^lib(?!python)/.test(c.name) && c.evidence);
  assert.ok(libraries.length > 10, `${libraries.length} library packages in the python layer`);
  for (const c of libraries) assert.ok(c.evidence!.occurrences.every((o) => o.location.startsWith('/')), `${c.name}: paths in the image`);
  const counts: Record<string, number> = {};
  for (const c of bom.components) { const k = c.purl ? c.purl.slice(4, c.purl.indexOf('/')) : c.type; counts[k] = (counts[k] ?? 0) + 1; }
  console.log(`    pytorch-mlp SBOM components by kind: ${JSON.stringify(counts)}`);
});

test('a base imported from an image is accounted for by its dpkg database: its installed Debian packages', async () => {
  // A base layout whose layer holds a dpkg status file (two packages installed, one only configured away).
  const status = [
    'Package: libc6\nStatus: install ok installed\nArchitecture: amd64\nVersion: 2.36-9+deb12u4\n',
    'Package: zlib1g\nStatus: install ok installed\nArchitecture: amd64\nVersion: 1:1.2.13.dfsg-1\n',
    'Package: removed-thing\nStatus: deinstall ok config-files\nArchitecture: amd64\nVersion: 1.0\n',
  ].join('\n');
  const store = new BlobStore(path.join(work, 'base-store'));
  const layer = await buildLayer([{ path: '/var/lib/dpkg/status', content: status }, { path: '/usr/local/bin/node', content: '#!/bin/sh\n', mode: 0o755 }], { store, sourceDateEpoch: 0 });
  const image = withConfig(appendLayers(emptyImage({ os: 'linux', architecture: process.arch === 'arm64' ? 'arm64' : 'amd64' }, '1970-01-01T00:00:00Z'), layer), { Env: ['NODE_VERSION=20.1.0'] });
  await writeLayout(image, path.join(work, 'debian-base'), { store });
  const project = path.join(work, 'on-debian-base');
  await cp(path.join(REPO, 'examples/onnx-iris'), project, { recursive: true, filter: (src) => !src.includes('/.pyml') });
  await symlink(path.join(REPO, 'node_modules'), path.join(project, 'node_modules'));
  const config = (await readFile(path.join(project, 'pyml.config.ts'), 'utf8')).replace('plugins: [onnx()],', `plugins: [onnx()], image: { base: ${JSON.stringify(path.join(work, 'debian-base'))} },`);
  await writeFile(path.join(project, 'pyml.config.ts'), config);
  const r = await pyml(['build', project, '--out', path.join(work, 'on-debian-base-out')]);
  assert.is(r.code, 0, r.stderr);
  const described = parseJson<{ base: { name: string; digest: string }; components: { part: string; type: string; name: string; version?: string }[] }>(await pyml(['inspect', 'image', path.join(work, 'on-debian-base-out'), '--json']));
  assert.is(described.base.name, path.join(work, 'debian-base'));
  assert.match(described.base.digest, /^sha256:/);
  const base = described.components.filter((c) => c.part === 'base').map((c) => `${c.type} ${c.name}@${c.version}`);
  assert.equal(base, ['generic node@20.1.0', 'deb libc6@2.36-9+deb12u4', 'deb zlib1g@1:1.2.13.dfsg-1']);
  const bom = JSON.parse((await pyml(['sbom', path.join(work, 'on-debian-base-out')])).stdout) as Cdx;
  assert.ok(bom.components.some((c) => c.purl === 'pkg:deb/debian/zlib1g@1%3A1.2.13.dfsg-1?arch=amd64' || c.purl === 'pkg:deb/debian/zlib1g@1%3A1.2.13.dfsg-1?arch=arm64'), 'the base\'s packages have purls');
});

test('--platform linux/amd64,linux/arm64 --sbom: one SBOM per platform image, each referring to its own image', async () => {
  const out = path.join(work, 'multi');
  const r = await pyml(['build', 'examples/onnx-iris', '--platform', 'linux/amd64,linux/arm64', '--out', out, '--sbom', '--json']);
  assert.is(r.code, 0, r.stderr);
  const built = parseJson<{ platforms: { platform: string; digest: string }[]; sbom: { platform: string; digest: string }[] }>(r);
  const validate = schemaOf('build-output.schema.json');
  if (!validate(built)) assert.unreachable(`build --platform --sbom --json: ${JSON.stringify(validate.errors)}`);
  assert.equal(built.sbom.map((s) => s.platform), ['linux/amd64', 'linux/arm64']);
  for (const [i, p] of built.platforms.entries()) {
    const described = parseJson<{ digest: string; platform: string; sbom: { digest: string }[] }>(await pyml(['inspect', 'image', out, '--platform', p.platform, '--json']));
    assert.is(described.digest, p.digest);
    assert.equal(described.sbom.map((s) => s.digest), [built.sbom[i]!.digest], `${p.platform}: its own SBOM only`);
    const bom = JSON.parse((await pyml(['sbom', out, '--platform', p.platform])).stdout) as Cdx & { metadata: { component: { properties: { value: string }[] } } };
    assert.is(bom.metadata.component.properties[0]!.value, p.platform);
  }
});

test('bad input: a missing image and an unknown format are usage errors naming what was expected', async () => {
  const r = await pyml(['sbom', path.join(work, 'no-such-layout')]);
  assert.is(r.code, 2, r.stderr);
  assert.match(r.stderr, 'no-such-layout');
  const bad = await pyml(['sbom', layout, '--format', 'swid']);
  assert.is(bad.code, 2);
  assert.match(bad.stderr, '--format "swid": expected cyclonedx or spdx');
});

test.run();
