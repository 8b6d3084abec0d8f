import { readFile } from 'node:fs/promises';
import { FRAMEWORKS, TEMPLATES, type FrameworkScaffold } from './frameworks.ts';
import { shellQuote, type ScaffoldFile } from './write-files.ts';

/**
 * The project's package.json: scripts only. It names no @pyml/* package (they are in no registry: pyml is an
 * installed tool, and the config's imports of @pyml/* resolve to the installed pyml's own packages), so there is
 * nothing to `npm install`; the scripts call the `pyml` on PATH and the test uses node's own runner.
 */
function packageJson(name: string, fw: FrameworkScaffold): string {
  return `${JSON.stringify({
    name,
    version: '0.1.0',
    private: true,
    type: 'module',
    scripts: {
      build: 'pyml build . --out .pyml/image',
      predict: 'pyml predict .pyml/image --input sample.json',
      serve: 'pyml serve .pyml/image',
      test: 'node --test test/model.test.mjs',
      ...(fw.makeModel ? { 'make-model': fw.makeModel } : {}),
    },
  }, null, 2)}\n`;
}

/** The next steps, as `pyml init` prints them and the README lists them; `cd` only when `dir` is given. */
export function nextSteps(dir: string | undefined): string[] {
  return [
    ...(dir ? [`cd ${shellQuote(dir)}`] : []),
    'pyml build . --out .pyml/image                     # an OCI image: base | deps | weights | model | entrypoint',
    'pyml predict .pyml/image --input sample.json       # runs the image once on sample.json',
    'pyml serve .pyml/image                             # Open Inference Protocol: gRPC 127.0.0.1:8001, HTTP 127.0.0.1:8000',
    'npm test                                           # build + predict sample.json (node:test: nothing to install)',
  ];
}

function readme(name: string, framework: string, fw: FrameworkScaffold): string {
  const made = fw.makeModel ? `made by \`${fw.makeModel}\`` : 'written by `pyml init`';
  const modelFile = fw.files.includes('src/model.ts')
    ? '`src/model.ts` (the model class: `init` + `predict`), '
    : fw.files.includes('src/model.py')
      ? '`src/model.py` (the model class the Python sidecar runs: `init` + `predict`), '
      : 'no model class (the plugin supplies one; set `model` in the config to write your own), ';
  return `# ${name}

A pyml model project (${framework}, plugin \`${fw.plugin}\`), made by \`pyml init\`. It builds and predicts as it
stands with a tiny starter model in \`${fw.weights}\` (${made}); replace it with yours.

It needs the \`pyml\` command on PATH and nothing else: the project installs no package. The config's imports of
\`@pyml/core\` and \`${fw.plugin}\` resolve to the installed pyml's own packages.

\`\`\`sh
${nextSteps(undefined).join('\n')}
pyml inspect image .pyml/image --verify              # parts, sizes, digests, signature
\`\`\`

\`npm run build\`, \`npm run predict\` and \`npm run serve\` run the same commands.
${fw.needs ? `\nThe build machine needs ${fw.needs}.\n` : ''}
Files: \`pyml.config.ts\` (name, version, weights, plugins, signature), ${modelFile}\`sample.json\` (a V2 inference
request), \`test/model.test.mjs\` (node:test: builds the image with the \`pyml\` on PATH, predicts sample.json and
checks the outputs against the image's signature)${fw.makeModel ? ', `make-model.py` (the starter model)' : ''}.

Editor types (optional; pyml itself needs none of this): link the installed pyml's packages into the project
(symlinks, nothing downloaded, package.json untouched), then typecheck with TypeScript's \`tsc\`:

\`\`\`sh
npm link @pyml/core @pyml/contract ${fw.plugin}     # NPM_CONFIG_PREFIX=DIR first if pyml was installed with --prefix DIR
npx -p typescript tsc --noEmit
\`\`\`
`;
}

/** Every file of a new model project, for `pyml init`. */
export async function modelProjectFiles(name: string, framework: string): Promise<ScaffoldFile[]> {
  const fw = FRAMEWORKS[framework]!;
  const fill = (text: string) => text.replaceAll('__NAME__', name);
  const files: ScaffoldFile[] = [];
  for (const f of fw.files) files.push({ path: f, content: fill(await readFile(`${TEMPLATES}${framework}/${f}`, 'utf8')) });
  files.push(
    { path: 'test/model.test.mjs', content: await readFile(`${TEMPLATES}common/test/model.test.mjs`, 'utf8') },
    { path: '.gitignore', content: await readFile(`${TEMPLATES}common/gitignore`, 'utf8') },
    { path: 'tsconfig.json', content: await readFile(`${TEMPLATES}common/tsconfig.json`, 'utf8') },
    { path: 'package.json', content: packageJson(name, fw) },
    { path: 'README.md', content: readme(name, framework, fw) },
    { path: fw.weights, generate: (out) => fw.generate(out) },
  );
  return files;
}
