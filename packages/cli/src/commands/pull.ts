import { parseCommandArgs } from '../args.ts';
import { EXIT, PymlError } from '@pyml/errors';
import { parsePlatform, pullImage } from '@pyml/registry/pull-image';
import { parseReference } from '@pyml/registry/reference';
import { formatBytes, printJson, showProgress, usage } from '../output.ts';
import { Progress } from '../progress.ts';

export const help = `Usage: pyml pull REF --out DIR [options]

Pulls an image from an OCI registry into an OCI layout directory, checking every blob against its digest.
The directory is written under a temp name and renamed into place; an existing layout there is replaced.

REF is HOST[:PORT]/REPOSITORY[:TAG|@DIGEST] (docker:// accepted); credentials as for pyml push.

Options:
  --out DIR          the OCI layout directory to write (required)
  --platform OS/ARCH which image of an image index (default: this machine's, e.g. linux/amd64)
  --json             print one JSON object (and no progress unless --progress says)
  --progress MODE    auto, tty (bars: done/total, percentage, ETA), plain (a line per blob) or quiet
  -h, --help         show this help

Examples:
  pyml pull 127.0.0.1:5000/iris:1.0.0 --out /tmp/iris-pulled
  pyml inspect image /tmp/iris-pulled
`;

export async function run(args: string[]): Promise<number> {
  const { values, positionals } = parseCommandArgs('pull', {
    args, allowPositionals: true,
    options: { out: { type: 'string' }, platform: { type: 'string' }, json: { type: 'boolean', default: false }, help: { type: 'boolean', short: 'h' } },
  });
  if (values.help) { process.stdout.write(help); return EXIT.ok; }
  if (positionals.length !== 1) throw usage(`pyml pull takes one REF, got ${positionals.length}`);
  if (!values.out) throw usage('pyml pull needs --out DIR');
  // A REF or --platform that cannot be right is bad usage (2), said before anything is fetched.
  try {
    parseReference(positionals[0]!);
    if (values.platform !== undefined) parsePlatform(values.platform);
  } catch (error) {
    throw usage((error as Error).message);
  }
  const progress = new Progress(showProgress({ json: values.json! }));
  let result;
  try {
    result = await pullImage(positionals[0], values.out, {
      platform: values.platform, log: (m) => progress.step(m), onProgress: (what, bytes, total) => progress.bytesDone(what, bytes, total),
    });
  } catch (error) {
    throw new PymlError((error as Error).message);
  } finally {
    progress.clear();
  }
  if (values.json) {
    printJson({ ok: true, ...result });
    return EXIT.ok;
  }
  const total = result.blobs.reduce((n, b) => n + b.size, 0);
  process.stdout.write(`pulled ${result.ref} (${result.platform}) in ${result.seconds.toFixed(2)} s\n  digest  ${result.digest}\n  layout  ${result.layout}\n  size    ${formatBytes(total)} in ${result.blobs.length} blobs\n`);
  return EXIT.ok;
}
