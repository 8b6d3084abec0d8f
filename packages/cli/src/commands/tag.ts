import { parseCommandArgs } from '../args.ts';
import { EXIT, PymlError } from '@pyml/errors';
import { printJson, usage } from '../output.ts';

export const help = `Usage: pyml tag SOURCE TARGET [options]

Tags an image in a registry under another tag of the same repository, without moving a layer: the manifest (or
image index) SOURCE names is read and put again under TARGET's tag, byte for byte, so the digest stays (as
crane tag does; a promotion such as :sha-1f2e3d to :prod). SOURCE is HOST[:PORT]/REPO:TAG or HOST[:PORT]/REPO@DIGEST;
TARGET is the new tag alone, or the same HOST[:PORT]/REPO with it. Credentials as for pyml push (pyml login).
To put an image into another repository, pull it and push it: pyml pull SOURCE --out DIR && pyml push DIR TARGET.

Options:
  --json       print one JSON object (schemas/tag-output.schema.json)
  -h, --help   show this help

Exit codes: 0 tagged; 1 the registry refused or SOURCE is not there; 2 usage error.

Examples:
  pyml tag registry.example.com/models/iris:1.0.0 prod
  pyml tag 127.0.0.1:5000/iris@sha256:4f1c... 127.0.0.1:5000/iris:stable --json
`;

export async function run(args: string[]): Promise<number> {
  const { values, positionals } = parseCommandArgs('tag', {
    args, allowPositionals: true,
    options: { json: { type: 'boolean', default: false }, help: { type: 'boolean', short: 'h' } },
  });
  if (values.help) { process.stdout.write(help); return EXIT.ok; }
  if (positionals.length !== 2) throw usage(`pyml tag takes SOURCE and TARGET, got ${positionals.length} arguments`);
  const [sourceText, targetText] = positionals as [string, string];
  const { RegistryClient, formatReference, parseReference } = await import('@pyml/registry');
  const { fetchManifest } = await import('@pyml/registry/pull-image');
  const parse = (text: string, what: string) => {
    try {
      return parseReference(text);
    } catch (error) {
      throw usage(`${what}: ${(error as Error).message}`);
    }
  };
  const source = parse(sourceText, 'SOURCE');
  // A bare tag names the source's repository.
  const target = /^[\w][\w.-]{0,127}$/.test(targetText) ? { ...source, tag: targetText, digest: undefined, text: `${source.registry}/${source.repository}:${targetText}` } : parse(targetText, 'TARGET');
  if (target.digest || !target.tag) throw usage(`TARGET must be a tag (or HOST/REPO:TAG), got '${targetText}'`);
  if (target.registry !== source.registry || target.repository !== source.repository) {
    throw usage(`pyml tag tags within one repository: ${target.registry}/${target.repository} is not ${source.registry}/${source.repository}`, `to copy it there: pyml pull ${sourceText} --out DIR && pyml push DIR ${targetText}`);
  }
  const client = new RegistryClient(source, { actions: 'pull,push' });
  let digest: string;
  let mediaType: string;
  try {
    const manifest = await fetchManifest(client, source.digest ?? source.tag!);
    ({ digest, mediaType } = manifest);
    const res = await client.send({
      method: 'PUT', url: client.path(`/manifests/${target.tag}`), what: `putting the manifest under tag ${target.tag}`,
      headers: { 'Content-Type': mediaType }, body: () => manifest.bytes, expect: [201],
    });
    res.body.resume();
    const put = res.headers['docker-content-digest'];
    if (typeof put === 'string' && put !== digest) throw new Error(`the registry stored the manifest as ${put}, not ${digest}`);
  } catch (error) {
    throw new PymlError(`cannot tag ${formatReference(source)} as ${target.tag}: ${(error as Error).message}`, EXIT.failure);
  }
  const result = { ok: true, source: formatReference(source), target: formatReference(target), digest, mediaType };
  if (values.json) printJson(result);
  else process.stdout.write(`Tagged ${result.target} (${digest}) from ${result.source}\n`);
  return EXIT.ok;
}
