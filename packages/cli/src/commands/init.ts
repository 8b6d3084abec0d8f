import path from 'node:path';
import { parseCommandArgs } from '../args.ts';
import { EXIT, PymlError } from '@pyml/errors';
import { printJson, showProgress, usage } from '../output.ts';
import { Progress } from '../progress.ts';
import { FRAMEWORKS, pluginInstalled } from '../scaffold/frameworks.ts';
import { modelProjectFiles, nextSteps } from '../scaffold/model-project.ts';
import { existing, writeScaffold } from '../scaffold/write-files.ts';

export const help = `Usage: pyml init [DIR] [options]

Scaffolds a model project in DIR (default '.'): pyml.config.ts, the model class, a tiny starter model in weights/
(so the project builds and predicts as it stands; sklearn and pytorch make it with the project's make-model.py
and /usr/bin/python3, or PYML_PYTHON), sample.json (a V2 request), test/model.test.mjs (node:test: builds the
image and predicts sample.json with the pyml on PATH), package.json (scripts only), README.md, .gitignore.
The project needs no npm install: its config's imports of @pyml/* resolve to this pyml's own packages.
Never overwrites: if any of those files exists, nothing is written and the command exits 2 naming them.

Options:
  --framework NAME   onnx (default), tfjs, sklearn or pytorch
  --name NAME        model name (default: DIR's name, lower-cased); the image name and the V2 model name
  --json             print one JSON object (dir, framework, name, files)
  -h, --help         show this help

Examples:
  pyml init my-model
  pyml init fraud --framework sklearn --name fraud-lr
  cd my-model && npm test            # build + predict sample.json, with the pyml on PATH
`;

const NAME_PATTERN = /^[a-z0-9]+([._-][a-z0-9]+)*$/;

/** A model name from a directory name: lower-case, runs of other characters become '-'. */
export function nameFromDir(dir: string): string {
  const name = path.basename(path.resolve(dir)).toLowerCase().replace(/[^a-z0-9._-]+/g, '-').replace(/[._-]{2,}/g, '-').replace(/^[._-]+|[._-]+$/g, '');
  return NAME_PATTERN.test(name) ? name : 'model';
}

export async function run(args: string[]): Promise<number> {
  const { values, positionals } = parseCommandArgs('init', {
    args, allowPositionals: true,
    options: { framework: { type: 'string', default: 'onnx' }, name: { type: 'string' }, json: { type: 'boolean', default: false }, help: { type: 'boolean', short: 'h' } },
  });
  if (values.help) { process.stdout.write(help); return EXIT.ok; }
  if (positionals.length > 1) throw usage(`pyml init takes one directory, got ${positionals.length}`);
  const framework = values.framework!;
  const fw = FRAMEWORKS[framework];
  if (!fw) throw usage(`--framework must be one of ${Object.keys(FRAMEWORKS).join(', ')}, got '${framework}'`);
  if (!pluginInstalled(fw.plugin)) {
    const available = Object.entries(FRAMEWORKS).filter(([, f]) => pluginInstalled(f.plugin)).map(([k]) => k);
    throw new PymlError(`--framework ${framework}: its plugin ${fw.plugin} is not installed in this pyml, so the project could not build; nothing was written`,
      EXIT.usage, `frameworks available here: ${available.join(', ') || 'none'}`);
  }
  const dir = path.resolve(positionals[0] ?? '.');
  const name = values.name ?? nameFromDir(dir);
  if (!NAME_PATTERN.test(name)) throw usage(`--name '${name}' is not a model name: lower-case letters, digits and . _ - (e.g. 'fraud-lr')`);

  const files = await modelProjectFiles(name, framework);
  const clash = existing(dir, files);
  if (clash.length) {
    throw new PymlError(`${dir}: ${clash.join(', ')} already exist${clash.length === 1 ? 's' : ''}; pyml init never overwrites, nothing was written`,
      EXIT.usage, 'choose an empty directory, or move those files away');
  }
  // The Python starters take seconds: say what is happening, on a terminal only.
  new Progress(showProgress({ json: values.json! })).step(`making the starter ${framework} model${fw.makeModel ? ` (${fw.makeModel})` : ''}`);
  await writeScaffold(dir, files);
  const written = files.map((f) => f.path).sort();
  if (values.json) {
    printJson({ ok: true, dir, framework, name, files: written });
    return EXIT.ok;
  }
  const relative = path.relative(process.cwd(), dir) || '.';
  const rel = relative.startsWith('..') ? dir : relative;
  process.stdout.write(`created ${framework} model project '${name}' in ${rel}\n${written.map((f) => `  ${f}`).join('\n')}\n\n`);
  const needs = fw.needs ? `\nthe build machine needs ${fw.needs}\n` : '';
  process.stdout.write(`next:\n${nextSteps(rel === '.' ? undefined : rel).map((l) => `  ${l}\n`).join('')}${needs}`);
  return EXIT.ok;
}
