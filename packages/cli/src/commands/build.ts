import { parseArgs } from 'node:util';
import { build, EXIT } from '@pyml/core';
import { formatBytes, printJson, showProgress, usage } from '../output.ts';
import { Progress } from '../progress.ts';

export const help = `Usage: pyml build [PROJECT] [options]

Builds the model project (the directory holding pyml.config.ts, default '.') into an OCI image.

Options:
  --out DIR        OCI image layout directory to write (default: PROJECT/.pyml/image)
  --tar FILE       also write a tarball that docker load / podman load / skopeo accept
  --cache DIR      blob cache (default: $PYML_CACHE_DIR or ~/.cache/pyml)
  --json           print one JSON object (digest, layout, tar, parts) and no progress
  -h, --help       show this help

Examples:
  pyml build examples/onnx-iris
  pyml build examples/onnx-iris --out /tmp/iris-oci --tar /tmp/iris.tar --json
`;

export async function run(args: string[]): Promise<number> {
  const { values, positionals } = parseArgs({
    args, allowPositionals: true,
    options: { out: { type: 'string' }, tar: { type: 'string' }, cache: { type: 'string' }, json: { type: 'boolean', default: false }, help: { type: 'boolean', short: 'h' } },
  });
  if (values.help) { process.stdout.write(help); return EXIT.ok; }
  if (positionals.length > 1) throw usage(`pyml build takes one project directory, got ${positionals.length}`);
  const progress = new Progress(showProgress({ json: values.json! }));
  const result = await build({
    project: positionals[0] ?? '.', out: values.out, tar: values.tar, cacheDir: values.cache,
    log: (m) => progress.step(m), onProgress: (e) => progress.bytesDone(e.part, e.bytes),
  });
  progress.clear();
  if (values.json) {
    printJson({ ok: true, ...result });
    return EXIT.ok;
  }
  const w = Math.max(...result.parts.map((p) => p.name.length));
  process.stdout.write(`built ${result.refName} (${result.platform}) in ${result.seconds.toFixed(2)} s\n`);
  process.stdout.write(`  digest  ${result.digest}\n  layout  ${result.layout}\n${result.tar ? `  tar     ${result.tar}\n` : ''}`);
  for (const p of result.parts) {
    process.stdout.write(`  ${p.part.padEnd(10)} ${p.name.padEnd(w)}  ${p.digest.slice(0, 19)}  ${formatBytes(p.size).padStart(9)}  ${p.mediaType.endsWith('gzip') ? 'gzip' : 'tar '}  ${p.reused ? 'cached' : 'built'}\n`);
  }
  return EXIT.ok;
}
