import { readFileSync } from 'node:fs';
import { EXIT } from '@pyml/core';
import { reportError, usage } from './output.ts';
import { buildCommand, buildHelp } from './commands/build.ts';
import { inspectCommand, inspectHelp } from './commands/inspect.ts';

type Command = { run: (args: string[]) => Promise<number>; help: string; summary: string };

/** CLI verbs: what the user means to do. Each lives in its own file under commands/. */
const COMMANDS: Record<string, Command> = {
  build: { run: buildCommand, help: buildHelp, summary: 'build a model project into an OCI image' },
  inspect: { run: inspectCommand, help: inspectHelp, summary: 'show what is in an image (inspect image REF)' },
};

export function registerCommand(name: string, command: Command): void {
  COMMANDS[name] = command;
}

const version = (JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8')) as { version: string }).version;

function mainHelp(): string {
  const w = Math.max(...Object.keys(COMMANDS).map((k) => k.length));
  return `pyml ${version}: make ML models production-ready as standard container images

Usage: pyml <command> [options]

Commands:
${Object.entries(COMMANDS).map(([k, c]) => `  ${k.padEnd(w)}  ${c.summary}`).join('\n')}

Run 'pyml <command> --help' for a command's options and examples.
Exit codes: 0 ok, 1 failure (build, verification, prediction), 2 usage or config error.
`;
}

export async function main(argv: string[]): Promise<number> {
  const [name, ...args] = argv;
  const json = args.includes('--json');
  try {
    if (!name || name === '--help' || name === '-h' || name === 'help') { process.stdout.write(mainHelp()); return EXIT.ok; }
    if (name === '--version' || name === '-v') { process.stdout.write(`${version}\n`); return EXIT.ok; }
    const command = COMMANDS[name];
    if (!command) throw usage(`unknown command '${name}' (commands: ${Object.keys(COMMANDS).join(', ')})`);
    return await command.run(args);
  } catch (err) {
    if ((err as { code?: string }).code?.startsWith('ERR_PARSE_ARGS')) return reportError(usage((err as Error).message), { json });
    return reportError(err, { json });
  }
}
