import { parseCommandArgs } from '../args.ts';
import { EXIT } from '@pyml/errors';
import { describeImage, diffImages, type ImageDiff } from '@pyml/image/pyml-format';
import { withImage } from '../describe-image.ts';
import { formatBytes, printJson, usage } from '../output.ts';

export const help = `Usage: pyml diff REF_A REF_B [options]

Shows what changed from image A to image B: which parts (layers) have new digests, which signature fields
changed, which dependencies changed. REF is an OCI image layout directory, an image tarball, a registry image
(HOST[:PORT]/REPO:TAG, credentials from the Docker config) or an engine's image (docker-daemon:NAME:TAG).

A signature change is breaking when a request or response valid for A may be rejected or misread by B:
  - an input or output removed (a rename is a removal plus an addition), or an input added;
  - a dtype changed, or a rank changed;
  - a fixed dimension changed to another size; an input dimension went from free (-1) to fixed;
    an output dimension went from fixed to free;
  - the contract kind changed (tensor <-> dataframe).
Compatible: a new output; an input dimension that went from fixed to free (-1).

Options:
  --fail-on WHAT       exit 1 when there is: 'breaking' (a breaking signature change), 'signature' (any
                       signature change) or 'any' (any difference at all); without it, diff exits 0 whatever changed
  --platform OS/ARCH   which image of a multi-platform index to compare (default: this machine's)
  --json               print one JSON object
  -h, --help           show this help

Exit codes: 0 no failing change; 1 a change --fail-on names, or an image that cannot be read; 2 usage error.

Examples:
  pyml diff /tmp/iris-v1 /tmp/iris-v2
  pyml diff registry.example.com/team/iris:main .pyml/image --fail-on breaking     # a CI gate
  pyml diff old.tar new.tar --json | jq '.signature[] | select(.breaking)'
`;

const FAIL_ON = ['breaking', 'signature', 'any'] as const;
type FailOn = (typeof FAIL_ON)[number];

export async function run(args: string[]): Promise<number> {
  const { values, positionals } = parseCommandArgs('diff', {
    args, allowPositionals: true,
    options: { 'fail-on': { type: 'string' }, platform: { type: 'string' }, json: { type: 'boolean', default: false }, help: { type: 'boolean', short: 'h' } },
  });
  if (values.help) { process.stdout.write(help); return EXIT.ok; }
  if (positionals.length !== 2) throw usage(`pyml diff takes two images, REF_A and REF_B; got ${positionals.length}`);
  const failOn = values['fail-on'];
  if (failOn !== undefined && !(FAIL_ON as readonly string[]).includes(failOn)) {
    throw usage(`--fail-on must be one of ${FAIL_ON.join(', ')}, got '${failOn}'`);
  }
  const [refA, refB] = positionals as [string, string];
  const opts = { platform: values.platform };
  const diff = await withImage(refA, async (a) => withImage(refB, async (b) => diffImages(await describeImage(a), await describeImage(b)), opts), opts);
  const failed = failOn ? fails(diff, failOn as FailOn) : false;
  if (values.json) printJson({ ok: !failed, ...diff, ...(failOn ? { failOn, failed } : {}) });
  else process.stdout.write(formatDiff(diff));
  if (failed) {
    process.stderr.write(`error: ${failOn === 'breaking' ? 'breaking signature change' : failOn === 'signature' ? 'the signature changed' : 'the images differ'} (--fail-on ${failOn})\n`);
    return EXIT.failure;
  }
  return EXIT.ok;
}

function fails(diff: ImageDiff, failOn: FailOn): boolean {
  if (failOn === 'breaking') return diff.breaking;
  if (failOn === 'signature') return diff.signature.length > 0 || Boolean(diff.kind);
  return !diff.identical;
}

const short = (digest?: string) => (digest ? digest.slice(0, 19) : '-');

export function formatDiff(d: ImageDiff): string {
  const out: string[] = [];
  const head = (tag: string, s: ImageDiff['a']) => `${tag}  ${s.ref}  ${s.name ?? '?'}:${s.version ?? '?'}  ${s.digest}`;
  out.push(head('a', d.a), head('b', d.b));
  if (d.identical) return `${out.join('\n')}\nidentical: same manifest digest\n`;
  const mark = { added: '+', removed: '-', changed: '~', unchanged: '=' } as const;
  out.push('', 'parts');
  const w = Math.max(...d.parts.map((p) => p.name.length), 4);
  for (const p of d.parts) {
    const sizes = p.status === 'changed' ? `  ${formatBytes(p.a!.size)} -> ${formatBytes(p.b!.size)}` : '';
    const digests = p.status === 'changed' ? `${short(p.a?.digest)} -> ${short(p.b?.digest)}` : short((p.b ?? p.a)?.digest);
    out.push(`  ${mark[p.status]} ${p.part.padEnd(10)} ${p.name.padEnd(w)}  ${digests}${sizes}  ${p.status}`);
  }
  out.push('', 'signature');
  if (d.kind) out.push(`  ! kind ${d.kind.from ?? '?'} -> ${d.kind.to ?? '?'}  breaking`);
  if (!d.signature.length && !d.kind) out.push('  unchanged');
  for (const c of d.signature) {
    const what = c.change === 'added' ? `added ${c.to}` : c.change === 'removed' ? `removed (was ${c.from})` : `${c.change} ${c.from} -> ${c.to}`;
    out.push(`  ${c.breaking ? '!' : '~'} ${c.side.padEnd(6)} ${c.name}  ${what}  ${c.breaking ? 'BREAKING' : 'compatible'}: ${c.reason}`);
  }
  const depChanges = d.deps.filter((x) => x.status !== 'unchanged');
  out.push('', 'dependencies');
  if (!depChanges.length) out.push('  unchanged');
  for (const x of depChanges) out.push(`  ${mark[x.status]} ${x.name}  ${x.status === 'added' ? x.to : x.status === 'removed' ? x.from : `${x.from} -> ${x.to}`}`);
  out.push('', d.breaking ? 'result: BREAKING signature change' : 'result: no breaking signature change');
  return `${out.join('\n')}\n`;
}
