import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { didYouMean, EXIT } from '@pyml/errors';
import { reportError, usage } from './output.ts';
import { parseProgressChoice, setProgressChoice } from './progress.ts';

/** Every command module exports these two. */
export interface CommandModule {
  run(args: string[]): Promise<number>;
  help: string;
}

/**
 * CLI verbs: what the user means to do. Each lives in its own file under commands/ and is imported only when
 * used, so `pyml build` never loads the serving or batch stacks.
 */
const COMMANDS: Record<string, { summary: string; load: () => Promise<CommandModule> }> = {
  build: { summary: 'build a model project into an OCI image', load: () => import('./commands/build.ts') },
  inspect: { summary: 'show what is in an image (inspect image REF)', load: () => import('./commands/inspect.ts') },
  predict: { summary: 'run an image once on an input file and print the outputs', load: () => import('./commands/predict.ts') },
  serve: { summary: 'serve images over gRPC and HTTP (Open Inference Protocol)', load: () => import('./commands/serve.ts') },
  batch: { summary: 'run an image over a SQL query into a table or a Parquet dataset', load: () => import('./commands/batch.ts') },
  push: { summary: 'push an image to an OCI registry', load: () => import('./commands/push.ts') },
  pull: { summary: 'pull an image from an OCI registry into a layout directory', load: () => import('./commands/pull.ts') },
  sbom: { summary: 'write an image\'s SBOM: CycloneDX 1.6 or SPDX 2.3 JSON', load: () => import('./commands/sbom.ts') },
  diff: { summary: 'show what changed between two images (a CI gate)', load: () => import('./commands/diff.ts') },
  init: { summary: 'scaffold a model project', load: () => import('./commands/init.ts') },
  plugin: { summary: 'scaffold a framework plugin package (plugin init)', load: () => import('./commands/plugin.ts') },
  deploy: { summary: 'write Kubernetes manifests for images (deploy k8s), build their front image (deploy serve-image)', load: () => import('./commands/deploy.ts') },
  images: { summary: 'list the images the cache holds (built, pulled, unpacked): name, version, digest, size, last use', load: () => import('./commands/images.ts') },
  login: { summary: 'check credentials against a registry and save them (Docker config or its credential helper)', load: () => import('./commands/login.ts') },
  logout: { summary: 'forget the credentials saved for a registry (Docker config or its credential helper)', load: () => import('./commands/logout.ts') },
  tag: { summary: 'tag an image in its registry under another tag of its repository (no layer moves)', load: () => import('./commands/tag.ts') },
  rmi: { summary: 'remove images from the cache (pulled, unpacked, built): pyml images lists them', load: () => import('./commands/rmi.ts') },
  cache: { summary: 'show and prune what the cache holds (cache du, cache prune)', load: () => import('./commands/cache.ts') },
};

const version = (JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8')) as { version: string }).version;
/** The @pyml/cli package directory this pyml runs from: which of several installs answered is the first question. */
const installedAt = fileURLToPath(new URL('..', import.meta.url)).replace(/\/$/, '');

function mainHelp(): string {
  const w = Math.max(...Object.keys(COMMANDS).map((k) => k.length));
  return `pyml ${version}: make ML models production-ready as standard container images

Usage: pyml <command> [options]

Commands:
${Object.entries(COMMANDS).map(([k, c]) => `  ${k.padEnd(w)}  ${c.summary}`).join('\n')}

Run 'pyml <command> --help' for a command's options and examples.
Options of every command:
  --progress MODE  auto (default: tty on a terminal, plain otherwise), tty (redrawn bars with done/total,
                   percentage and ETA), plain (one line per step with sizes and times, for CI logs) or quiet
                   (warnings and errors only); all on stderr. Also PYML_PROGRESS. --json implies quiet.

Exit codes: 0 ok, 1 failure while running (build, prediction, registry, verification), 2 bad usage, config or input.
Environment: PYML_CACHE_DIR (blob cache), PYML_PROGRESS, SOURCE_DATE_EPOCH (timestamps), NO_COLOR.
`;
}

function printVersionJson(): void {
  process.stdout.write(`${JSON.stringify({ version, path: installedAt, node: process.version })}\n`);
}

/**
 * Takes the global `--progress MODE` (or `--progress=MODE`) out of a command's arguments, so that every command has
 * it without declaring it; arguments after `--` are left alone.
 */
function takeProgressOption(args: string[]): string[] {
  const rest: string[] = [];
  for (let i = 0; i < args.length; i++) {
    const a = args[i]!;
    if (a === '--') { rest.push(...args.slice(i)); break; }
    if (a === '--progress' || a.startsWith('--progress=')) {
      const value = a === '--progress' ? args[++i] : a.slice('--progress='.length);
      if (value === undefined || value === '' || value.startsWith('-')) throw usage('--progress needs a value: auto, tty, plain or quiet');
      setProgressChoice(parseProgressChoice(value, '--progress'));
      continue;
    }
    rest.push(a);
  }
  return rest;
}

export async function main(argv: string[]): Promise<number> {
  const [name, ...given] = argv;
  const json = given.includes('--json');
  const command = name !== undefined && Object.hasOwn(COMMANDS, name) ? name : undefined;
  try {
    const args = takeProgressOption(given);
    if (process.env.PYML_PROGRESS) parseProgressChoice(process.env.PYML_PROGRESS, 'PYML_PROGRESS');
    // No command is a usage error (Docker's convention): the help goes to stderr, stdout stays empty.
    if (name === undefined) { process.stderr.write(mainHelp()); return EXIT.usage; }
    if (name === '--help' || name === '-h') { process.stdout.write(mainHelp()); return 0; }
    if (name === 'help') {
      if (args[0] === undefined) { process.stdout.write(mainHelp()); return 0; }
      return await main([args[0], '--help']);
    }
    if (name === '--version' || name === '-v') {
      if (json) printVersionJson();
      else process.stdout.write(`pyml ${version} (${installedAt}, node ${process.version})\n`);
      return 0;
    }
    const entry = command === undefined ? undefined : COMMANDS[command];
    if (!entry) {
      const known = Object.keys(COMMANDS);
      const suggestion = didYouMean(name, known);
      throw usage(`unknown command '${name}'${suggestion ? `; ${suggestion}` : ` (commands: ${known.join(', ')})`}`);
    }
    let module: CommandModule;
    try {
      module = await entry.load();
    } catch (err) {
      if ((err as { code?: string }).code === 'ERR_MODULE_NOT_FOUND' && new RegExp(`commands/${name}\\.[jt]s`).test(String((err as Error).message))) {
        throw usage(`'pyml ${name}' is not available in this version`);
      }
      throw err;
    }
    return await module.run(args);
  } catch (err) {
    if ((err as { code?: string }).code?.startsWith('ERR_PARSE_ARGS')) return reportError(usage((err as Error).message.split(/\.\s|\n/)[0]!), { json, command });
    return reportError(err, { json, command });
  }
}

