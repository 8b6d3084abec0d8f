import { parseCommandArgs } from '../args.ts';
import { EXIT, PymlError } from '@pyml/errors';
import { printJson, usage } from '../output.ts';

export const help = `Usage: pyml logout REGISTRY [options]

Forgets the credentials pyml login (or docker login) saved for REGISTRY, as docker logout does: through the
credential helper the Docker config names for it ("credHelpers", else "credsStore": docker-credential-NAME erase),
and its entry in the config's "auths" ($DOCKER_CONFIG/config.json or ~/.docker/config.json, rewritten under a temp
name with mode 0600, other keys kept). Not being logged in is not an error.

Options:
  --json       print one JSON object (schemas/logout-output.schema.json)
  -h, --help   show this help

Examples:
  pyml logout registry.example.com
  pyml logout 127.0.0.1:5000 --json
`;

export async function run(args: string[]): Promise<number> {
  const { values, positionals } = parseCommandArgs('logout', {
    args, allowPositionals: true,
    options: { json: { type: 'boolean', default: false }, help: { type: 'boolean', short: 'h' } },
  });
  if (values.help) { process.stdout.write(help); return EXIT.ok; }
  if (positionals.length !== 1) throw usage(`pyml logout takes one REGISTRY (HOST[:PORT]), got ${positionals.length} arguments`);
  const { registryHost, removeCredentials } = await import('@pyml/registry');
  let registry: string;
  try {
    registry = registryHost(positionals[0]!);
  } catch (error) {
    throw usage((error as Error).message);
  }
  let removed;
  try {
    removed = await removeCredentials(registry);
  } catch (error) {
    throw new PymlError((error as Error).message);
  }
  if (values.json) {
    printJson({ ok: true, registry, removed: removed.removed, config: removed.config, ...(removed.helper ? { helper: removed.helper } : {}) });
    return EXIT.ok;
  }
  if (!removed.removed) process.stdout.write(`Not logged in to ${registry} (nothing saved for it in ${removed.config})\n`);
  else process.stdout.write(`Removed the credentials for ${registry}${removed.helper ? ` (erased with ${removed.helper})` : ''} from ${removed.config}\n`);
  return EXIT.ok;
}
