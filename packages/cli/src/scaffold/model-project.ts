import { readFile } from 'node:fs/promises';
import { FRAMEWORKS, TEMPLATES, type FrameworkScaffold } from './frameworks.ts';
import type { ScaffoldFile } from './write-files.ts';

const PYML_RANGE = '^0.1.0';

function packageJson(name: string, fw: FrameworkScaffold): string {
  return `${JSON.stringify({
    name,
    private: true,
    type: 'module',
    scripts: {
      build: 'pyml build . --out .pyml/image',
      predict: 'pyml predict .pyml/image --input sample.json',
      test: 'node --import tsx --test test/model.test.ts',
      'make-model': fw.makeModel,
      typecheck: 'tsc --noEmit',
    },
    dependencies: { '@pyml/contract': PYML_RANGE, '@pyml/core': PYML_RANGE, [fw.plugin]: PYML_RANGE, ...fw.extraDeps },
    devDependencies: { '@pyml/cli': PYML_RANGE, tsx: '^4.20.0', typescript: '^5.9.0', '@types/node': '^20.19.0' },
  }, null, 2)}\n`;
}

function readme(name: string, framework: string, fw: FrameworkScaffold): string {
  return `# ${name}

A pyml model project (${framework}, plugin \`${fw.plugin}\`), made by \`pyml init\`. It builds and predicts as it
stands with a tiny starter model in \`${fw.weights}\` (made by \`${fw.makeModel}\`); replace it with yours.

\`\`\`sh
npm run build      # pyml build . --out .pyml/image: an OCI image (base | deps | weights | model | entrypoint)
npm run predict    # pyml predict .pyml/image --input sample.json
npm test           # builds and predicts sample.json, checks the outputs against the image's signature
pyml inspect image .pyml/image --verify
pyml serve .pyml/image        # gRPC + HTTP, Open Inference Protocol (KServe V2)
\`\`\`
${fw.needs ? `\nThe build machine needs ${fw.needs}.\n` : ''}
Files: \`pyml.config.ts\` (name, version, weights, plugins, signature), ${fw.files.includes('src/model.ts') ? '`src/model.ts` (the model class: `init` + `predict`), ' : fw.files.includes('src/model.py') ? '`src/model.py` (the model class the Python sidecar runs: `init` + `predict`), ' : 'no model class (the plugin supplies one; set `model` in the config to write your own), '}\`sample.json\` (a V2 inference request), \`test/model.test.ts\`.
`;
}

/** Every file of a new model project, for `pyml init`. */
export async function modelProjectFiles(name: string, framework: string): Promise<ScaffoldFile[]> {
  const fw = FRAMEWORKS[framework]!;
  const fill = (text: string) => text.replaceAll('__NAME__', name);
  const files: ScaffoldFile[] = [];
  for (const f of fw.files) files.push({ path: f, content: fill(await readFile(`${TEMPLATES}${framework}/${f}`, 'utf8')) });
  files.push(
    { path: 'test/model.test.ts', content: await readFile(`${TEMPLATES}common/test/model.test.ts`, 'utf8') },
    { path: '.gitignore', content: await readFile(`${TEMPLATES}common/gitignore`, 'utf8') },
    { path: 'tsconfig.json', content: await readFile(`${TEMPLATES}common/tsconfig.json`, 'utf8') },
    { path: 'package.json', content: packageJson(name, fw) },
    { path: 'README.md', content: readme(name, framework, fw) },
    { path: fw.weights, generate: (out) => fw.generate(out) },
  );
  return files;
}
