import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { parseCommandArgs } from '../args.ts';
import { build, buildPlatforms, parsePlatformList, type BuildOptions } from '@pyml/core';
import { EXIT, PymlError } from '@pyml/errors';
import type { LoadResult } from '@pyml/registry/docker-engine';
import type { PushResult } from '@pyml/registry/push-image';
import { formatBytes, printJson, showProgress, usage } from '../output.ts';
import { Progress } from '../progress.ts';

export const help = `Usage: pyml build [PROJECT] [options]

Builds the model project (the directory holding pyml.config.ts, default '.') into an OCI image.

Options:
  --out DIR        OCI image layout directory to write (default: PROJECT/.pyml/image)
  --tar FILE       also write a tarball that docker load / podman load / skopeo accept
  --cache DIR      blob cache (default: $PYML_CACHE_DIR or ~/.cache/pyml)
  --push REF       then push the image to a registry (HOST[:PORT]/REPO[:TAG]; see pyml push --help)
  --load           then load the image into the Docker engine at DOCKER_HOST, tagged NAME:VERSION and image.tags
  --platform LIST  build for these platforms instead of image.platform: one (linux/arm64), or several
                   (linux/amd64,linux/arm64) for an image index with one image per platform; another
                   architecture than this machine's needs an image.base that has it
  --sbom           also store the image's CycloneDX SBOM in the layout as an OCI artifact referring to the image
                   (OCI 1.1 subject; --push sends it too; not in --tar's tarball); see pyml sbom --help
  --reproducible-check  build twice, each from a fresh empty cache into a temporary layout, and fail (exit 1)
                   naming the first layer and file that differ; then build as asked
  --json           print one JSON object (digest, layout, tar, parts) and no progress
  -h, --help       show this help

Examples:
  pyml build examples/onnx-iris
  pyml build examples/onnx-iris --out /tmp/iris-oci --tar /tmp/iris.tar --json
  pyml build examples/onnx-iris --push 127.0.0.1:5000/iris:1.0.0 --load
`;

export async function run(args: string[]): Promise<number> {
  const { values, positionals } = parseCommandArgs('build', {
    args, allowPositionals: true,
    options: { out: { type: 'string' }, tar: { type: 'string' }, cache: { type: 'string' }, push: { type: 'string' }, platform: { type: 'string' }, load: { type: 'boolean', default: false }, sbom: { type: 'boolean', default: false }, 'reproducible-check': { type: 'boolean', default: false }, json: { type: 'boolean', default: false }, help: { type: 'boolean', short: 'h' } },
  });
  if (values.help) { process.stdout.write(help); return EXIT.ok; }
  if (positionals.length > 1) throw usage(`pyml build takes one project directory, got ${positionals.length}`);
  const platforms = values.platform ? parsePlatformList(values.platform) : undefined;
  if (platforms && platforms.length > 1) {
    if (values['reproducible-check']) throw usage('--reproducible-check takes one platform; check each --platform on its own');
    return runMultiPlatform(positionals[0] ?? '.', platforms, values);
  }
  const progress = new Progress(showProgress({ json: values.json! }));
  if (values['reproducible-check']) {
    const { checkReproducible } = await import('../reproducible-check.ts');
    const check = await checkReproducible({ project: positionals[0] ?? '.', platform: platforms?.[0], log: (m) => progress.step(m) }).finally(() => progress.clear());
    if (!check.same) throw new PymlError(check.message, EXIT.failure, 'see the README: what a build must not depend on (time, paths, random values, the order of a directory listing)');
    if (!values.json) process.stdout.write(`reproducible: two builds from empty caches gave ${check.digest}\n`);
  }
  // docker load takes the tarball form: without --tar, write one to a temp dir for the engine only.
  const loadDir = values.load && !values.tar ? await mkdtemp(path.join(tmpdir(), 'pyml-load-')) : undefined;
  const tar = values.tar ?? (loadDir ? path.join(loadDir, 'image.tar') : undefined);
  let result, loaded: LoadResult | undefined, pushed: PushResult | undefined, sbom: { digest: string; artifactType: string; size: number } | undefined;
  try {
    result = await build({
      project: positionals[0] ?? '.', out: values.out, tar, cacheDir: values.cache, platform: platforms?.[0],
      log: (m) => progress.step(m), onProgress: (e) => progress.bytesDone(e.part, e.bytes),
    });
    progress.clear();
    if (values.sbom) {
      const { attachSbom } = await import('../sbom/sbom-document.ts');
      sbom = await attachSbom(result.layout);
    }
    if (values.push) {
      const { pushWithProgress } = await import('./push.ts');
      pushed = await pushWithProgress(result.layout, values.push, values.json!);
    }
    if (values.load) {
      progress.step(`loading ${result.refName} into the Docker engine`);
      const { loadIntoEngine } = await import('@pyml/registry/docker-engine');
      loaded = await loadIntoEngine(tar!, [result.refName]).catch((error: Error) => { throw new PymlError(error.message); });
    }
  } finally {
    progress.clear();
    if (loadDir) await rm(loadDir, { recursive: true, force: true });
  }
  if (loadDir) delete result.tar;
  if (values.json) {
    printJson({ ok: true, ...result, ...(sbom ? { sbom } : {}), ...(pushed ? { pushed } : {}), ...(loaded ? { loaded } : {}) });
    return EXIT.ok;
  }
  const w = Math.max(...result.parts.map((p) => p.name.length));
  process.stdout.write(`built ${result.refName} (${result.platform}) in ${result.seconds.toFixed(2)} s\n`);
  process.stdout.write(`  digest  ${result.digest}\n  layout  ${result.layout}\n${result.tar ? `  tar     ${result.tar}\n` : ''}`);
  for (const p of result.parts) {
    process.stdout.write(`  ${p.part.padEnd(10)} ${p.name.padEnd(w)}  ${p.digest.slice(0, 19)}  ${formatBytes(p.size).padStart(9)}  ${p.mediaType.endsWith('gzip') ? 'gzip' : 'tar '}  ${p.reused ? 'cached' : 'built'}\n`);
  }
  if (sbom) process.stdout.write(`  sbom    ${sbom.digest} (${sbom.artifactType}, ${formatBytes(sbom.size)}), referring to the image\n`);
  if (pushed) {
    const { printPushResult } = await import('./push.ts');
    printPushResult(pushed);
  }
  if (loaded) process.stdout.write(`loaded into the Docker engine as ${loaded.tags.join(', ')} (${loaded.imageId.slice(0, 19)})\n`);
  return EXIT.ok;
}

/** `--platform a,b`: one image per platform under an image index; no tarball or engine (they hold one image). */
async function runMultiPlatform(project: string, platforms: NonNullable<BuildOptions['platform']>[], values: { out?: string; tar?: string; cache?: string; push?: string; load?: boolean; sbom?: boolean; json?: boolean }): Promise<number> {
  if (values.tar || values.load) throw usage('--tar and --load take one image; with several --platform values, write a layout (and --push it)');
  const progress = new Progress(showProgress({ json: values.json! }));
  let result, pushed: PushResult | undefined;
  const sboms: { platform: string; digest: string; artifactType: string; size: number }[] = [];
  try {
    result = await buildPlatforms({
      project, out: values.out, cacheDir: values.cache,
      log: (m) => progress.step(m), onProgress: (e) => progress.bytesDone(e.part, e.bytes),
    }, platforms);
    progress.clear();
    if (values.sbom) {
      // One SBOM per platform's image, each referring to that image.
      const { attachSbom } = await import('../sbom/sbom-document.ts');
      for (const p of platforms) sboms.push({ platform: `${p.os}/${p.architecture}`, ...(await attachSbom(result.layout, 'cyclonedx', p)) });
    }
    if (values.push) {
      const { pushWithProgress } = await import('./push.ts');
      pushed = await pushWithProgress(result.layout, values.push, values.json!);
    }
  } finally {
    progress.clear();
  }
  if (values.json) {
    printJson({ ok: true, ...result, ...(sboms.length ? { sbom: sboms } : {}), ...(pushed ? { pushed } : {}) });
    return EXIT.ok;
  }
  process.stdout.write(`built ${result.refName} for ${result.platforms.map((p) => p.platform).join(', ')} in ${result.seconds.toFixed(2)} s\n`);
  process.stdout.write(`  index   ${result.digest}\n  layout  ${result.layout}\n`);
  for (const p of result.platforms) process.stdout.write(`  ${p.platform.padEnd(14)} ${p.digest}\n`);
  for (const s of sboms) process.stdout.write(`  sbom    ${s.platform.padEnd(14)} ${s.digest} (${s.artifactType}), referring to that image\n`);
  if (pushed) {
    const { printPushResult } = await import('./push.ts');
    printPushResult(pushed);
  }
  return EXIT.ok;
}
