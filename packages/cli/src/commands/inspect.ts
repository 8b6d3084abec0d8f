import { parseCommandArgs } from '../args.ts';
import { EXIT } from '@pyml/errors';
import { describeImage, withImage, type ImageDescription } from '../describe-image.ts';
import { formatBytes, printJson, showProgress, usage } from '../output.ts';
import { Progress } from '../progress.ts';
import type { VerifyResult } from '@pyml/image';
import { contentsLines } from '../image-contents.ts';

export const help = `Usage: pyml inspect image REF [options]

Shows what is in an image: parts with digests and sizes, signature, dependencies, entrypoint, labels.
REF is an OCI image layout directory, an image tarball (OCI archive or docker-archive), a registry image
(HOST[:PORT]/REPO:TAG or docker://…, pulled to a temp dir) or an engine's image (docker-daemon:NAME:TAG, via DOCKER_HOST).

Options:
  --verify     re-hash every blob (manifest, config, layers) and check every layer entry against unpack's rules
               (paths and links that leave the root, bad whiteouts, setuid/setgid, devices, size over the limit);
               exit 1 naming each blob that does not match and each unsafe entry, by layer
  --platform OS/ARCH  which image of a multi-platform index to describe (default: this machine's)
  --json       print one JSON object
  -h, --help   show this help

Examples:
  pyml inspect image examples/onnx-iris/.pyml/image
  pyml inspect image /tmp/iris.tar --verify --json
  pyml inspect image 127.0.0.1:5000/iris:1.0.0
  pyml inspect image docker-daemon:iris:1.0.0
`;

export async function run(args: string[]): Promise<number> {
  const { values, positionals } = parseCommandArgs('inspect', {
    args, allowPositionals: true,
    options: { verify: { type: 'boolean', default: false }, platform: { type: 'string' }, json: { type: 'boolean', default: false }, help: { type: 'boolean', short: 'h' } },
  });
  if (values.help) { process.stdout.write(help); return EXIT.ok; }
  const [what, ref, ...rest] = positionals;
  if (what !== undefined && what !== 'image') throw usage(`pyml inspect knows 'image' (pyml inspect image REF), got '${what}'`);
  if (what !== 'image' || !ref || rest.length) throw usage('usage: pyml inspect image REF [--verify] [--json]');
  return withImage(ref, async (source) => {
    let description: ImageDescription;
    try {
      description = await describeImage(source);
    } catch (error) {
      if (!values.verify) throw error;
      // An image that cannot be described (its top layer over the size limit, say) is still verified, so the
      // report names every unsafe entry and blob.
      const verification = await source.verify();
      const message = (error as Error).message;
      if (values.json) printJson({ ok: false, error: { message, exitCode: EXIT.failure }, verified: false, verification });
      reportBad(ref, verification.filter((v) => !v.ok));
      process.stderr.write(`error: ${message}\n`);
      return EXIT.failure;
    }
    const progress = new Progress(showProgress({ json: values.json! }));
    const layerBytes = source.manifest.layers.reduce((n, l) => n + l.size, 0);
    if (values.verify) progress.step(`verifying ${ref}: re-hashing the manifest, config and ${source.manifest.layers.length} layers (${formatBytes(layerBytes)}) and checking every entry`);
    const verification = values.verify ? await source.verify() : undefined;
    const { attachedSboms } = await import('../sbom/sbom-artifact.ts');
    const sbom = (await attachedSboms(ref, source)).map(({ artifactType, digest, size, annotations }) => ({ artifactType: artifactType!, digest, size, ...(annotations ? { annotations } : {}) }));
    if (values.verify) progress.step(`verify done: ${verification!.length} checks`);
    progress.clear();
    const bad = verification?.filter((v) => !v.ok) ?? [];
    if (values.json) {
      printJson({ ...description, ...(sbom.length ? { sbom } : {}), ...(verification ? { verified: bad.length === 0, verification } : {}) });
    } else {
      printText(description);
      for (const s of sbom) process.stdout.write(`\nsbom      attached: ${s.artifactType} artifact ${s.digest}, referring to this image\n`);
      if (verification && bad.length === 0) {
        const blobs = verification.filter((v) => !v.what.endsWith(' entries')).length;
        process.stdout.write(`verified: all ${blobs} blobs match their digests, and every layer's entries unpack safely\n`);
      }
    }
    reportBad(ref, bad);
    return bad.length ? EXIT.failure : EXIT.ok;
  }, { platform: values.platform });
}

/** One stderr line per blob that does not match and per unsafe entry (by layer and name). */
function reportBad(ref: string, bad: VerifyResult[]): void {
  for (const b of bad) {
    if (b.unsafeEntries) {
      for (const u of b.unsafeEntries) {
        process.stderr.write(`error: ${ref}: layer ${u.layer} ${u.digest}: ${u.entry === '' ? '' : `entry ${JSON.stringify(u.entry)}: `}${u.problem}\n`);
      }
    } else if (b.error !== undefined) {
      process.stderr.write(`error: ${ref}: ${b.what} ${b.digest} could not be checked: ${b.error}\n`);
    } else {
      process.stderr.write(`error: ${ref}: ${b.what} ${b.digest} does not match its content (sha256 is ${b.actual ?? 'unreadable'})\n`);
    }
  }
}

function printText(d: ImageDescription): void {
  const out: string[] = [];
  out.push(`image     ${d.ref} (${d.source})`);
  if (d.name) out.push(`name      ${d.name}${d.version ? `:${d.version}` : ''}${d.kind ? `  (${d.kind} model)` : ''}`);
  out.push(`digest    ${d.digest}`, `platform  ${d.platform}`, `size      ${formatBytes(d.totalSize)}`);
  if (d.index) {
    out.push(`index     ${d.index.digest}`);
    for (const p of d.index.platforms) out.push(`  ${p.platform === d.platform ? '*' : ' '} ${p.platform.padEnd(14)} ${p.digest}`);
  }
  if (d.created) out.push(`created   ${d.created}`);
  out.push('', 'parts');
  const w = Math.max(...d.parts.map((p) => p.name.length), 4);
  for (const p of d.parts) out.push(`  ${p.part.padEnd(10)} ${p.name.padEnd(w)}  ${p.digest}  ${formatBytes(p.size).padStart(9)}  ${p.mediaType.endsWith('gzip') ? 'gzip' : 'tar'}`);
  if (d.signature) {
    out.push('', 'signature');
    for (const side of ['inputs', 'outputs'] as const) {
      for (const t of d.signature[side]) out.push(`  ${side === 'inputs' ? 'in ' : 'out'}  ${t.name}  ${t.dtype}  [${t.shape.join(', ')}]`);
    }
  }
  if (d.base) out.push('', `base      ${d.base.name}${d.base.digest ? ` (${d.base.digest})` : ''}`, ...d.base.layers.map((l) => `  layer   ${l}`));
  if (d.components) out.push('', ...contentsLines(d.components));
  // What the plugins said of each weights file (e.g. which runtime serves a pickle, and why); the contents list
  // has the files themselves, so with it only the files with details are named here.
  const weights = d.components ? d.weights.filter((w) => Object.keys(w.details ?? {}).length) : d.weights;
  if (weights.length) {
    out.push('', 'weights');
    for (const w of weights) {
      const details = Object.entries(w.details ?? {}).map(([k, v]) => `${k}=${v}`).join(' ');
      out.push(`  ${w.name}  ${formatBytes(w.size)}${w.format ? `  ${w.format}` : ''}${details ? `  ${details}` : ''}`);
    }
  }
  if (!d.components && d.deps.length) {
    out.push('', 'dependencies');
    for (const dep of d.deps) out.push(`  ${dep.name}@${dep.version}${dep.license ? `  ${dep.license}` : ''}${dep.integrity ? `  ${dep.integrity.slice(0, 24)}…` : ''}`);
  }
  out.push('', 'entrypoint', `  ${[...d.entrypoint.entrypoint, ...d.entrypoint.cmd].join(' ')}`);
  if (Object.keys(d.labels).length) {
    out.push('', 'labels');
    for (const [k, v] of Object.entries(d.labels).sort()) out.push(`  ${k}=${v}`);
  }
  process.stdout.write(`${out.join('\n')}\n`);
}
