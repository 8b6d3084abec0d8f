// The program of the pyml-serve image (`pyml deploy serve-image` bundles it into one file): `pyml serve` and
// nothing else. It lives in the CLI, which owns the serve command; deploy only bundles the path it is given.
import { EXIT } from '@pyml/errors';
import { run } from './commands/serve.ts';
import { reportError } from './output.ts';

const [verb, ...args] = process.argv.slice(2);
if (verb !== 'serve') {
  process.stderr.write(`error: this image runs \`pyml serve\` only, got '${verb ?? ''}'\n`);
  process.exit(EXIT.usage);
}
run(args).then((code) => process.exit(code), (error: unknown) => process.exit(reportError(error, { json: args.includes('--json'), command: 'serve' })));
