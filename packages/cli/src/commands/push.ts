import { parseCommandArgs } from '../args.ts';
import { EXIT, PymlError } from '@pyml/errors';
import { pushAny, type PushResult } from '@pyml/registry/push-image';
import { looksLikeRegistryRef, parseReference } from '@pyml/registry/reference';
import { withImage } from '../describe-image.ts';
import { formatBytes, printJson, showProgress, usage } from '../output.ts';
import { Progress } from '../progress.ts';

export const help = `Usage: pyml push IMAGE REF [options]

Pushes an image to an OCI registry, speaking the distribution API directly (no Docker daemon). Blobs the
registry already has are skipped, blobs in another repository of the same registry are mounted, the rest are
uploaded; the manifest goes last, so a failed push leaves no manifest behind.

IMAGE is an OCI layout directory, an image tarball, or another registry image (HOST/REPO:TAG).
REF is HOST[:PORT]/REPOSITORY[:TAG] (docker:// accepted). Credentials come from the Docker config
($DOCKER_CONFIG/config.json or ~/.docker/config.json: "auths", "credHelpers", "credsStore").
Loopback registries (127.0.0.1, localhost) use plain HTTP; list others in PYML_INSECURE_REGISTRIES.

Options:
  --json       print one JSON object (digest, blobs with exists/mounted/uploaded)
  --progress MODE  auto, tty (bars: done/total, percentage, ETA), plain (a line per blob) or quiet
  -h, --help   show this help

Examples:
  pyml push examples/onnx-iris/.pyml/image 127.0.0.1:5000/iris:1.0.0
  pyml push /tmp/iris.tar registry.example.com/team/iris:1.0.0 --json
`;

export async function run(args: string[]): Promise<number> {
  const { values, positionals } = parseCommandArgs('push', {
    args, allowPositionals: true,
    options: { json: { type: 'boolean', default: false }, help: { type: 'boolean', short: 'h' } },
  });
  if (values.help) { process.stdout.write(help); return EXIT.ok; }
  if (positionals.length !== 2) throw usage(`pyml push takes IMAGE and REF, got ${positionals.length} argument${positionals.length === 1 ? '' : 's'}`);
  const [image, target] = positionals;
  const result = await pushWithProgress(image, target, values.json!);
  if (values.json) printJson({ ok: true, ...result });
  else printPushResult(result);
  return EXIT.ok;
}

/** Shared with `pyml build --push`. */
export async function pushWithProgress(image: string, target: string, json: boolean): Promise<PushResult> {
  let ref;
  try {
    ref = parseReference(target);
  } catch (error) {
    throw usage((error as Error).message);
  }
  const progress = new Progress(showProgress({ json }));
  const mountFrom: string[] = [];
  // Copying between repositories of one registry: every blob can be mounted.
  if (looksLikeRegistryRef(image)) {
    const source = parseReference(image);
    if (source.registry === ref.registry) mountFrom.push(source.repository);
  }
  try {
    return await withImage(image, (source) => pushAny(source, ref, {
      mountFrom, log: (m) => progress.step(m), onProgress: (what, bytes, total) => progress.bytesDone(what, bytes, total),
    }));
  } catch (error) {
    if (error instanceof PymlError) throw error;
    throw new PymlError((error as Error).message);
  } finally {
    progress.clear();
  }
}

export function printPushResult(result: PushResult): void {
  const count = (a: string) => result.blobs.filter((b) => b.action === a).length;
  process.stdout.write(`pushed ${result.ref} in ${result.seconds.toFixed(2)} s\n  digest  ${result.digest}\n`);
  process.stdout.write(`  blobs   ${count('uploaded')} uploaded (${formatBytes(result.uploadedBytes)}), ${count('mounted')} mounted, ${count('exists')} already there\n`);
  for (const b of result.blobs) process.stdout.write(`  ${b.what.padEnd(32)} ${b.digest.slice(0, 19)}  ${formatBytes(b.size).padStart(9)}  ${b.action}${b.from ? ` from ${b.from}` : ''}\n`);
  for (const r of result.referrers ?? []) process.stdout.write(`  referrer ${r.artifactType} ${r.digest.slice(0, 19)}  ${r.via === 'referrers-api' ? 'indexed by the registry (referrers API)' : `listed under tag ${r.tag} (referrers tag schema)`}\n`);
}
