import { readFileSync } from 'node:fs';
import path from 'node:path';
import { build as esbuild } from 'esbuild';
import { nodeBaseFiles } from '@pyml/core/node-base';
import {
  BlobStore, appendLayers, buildLayer, createdFromEpoch, emptyImage, withAnnotations, withConfig, writeLayout, writeTarball,
} from '@pyml/image';
import { PART, hostPlatform, partAnnotations } from '@pyml/image/pyml-format';
import { RUN_AS } from './kubernetes-manifests.ts';

const VERSION = (JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8')) as { version: string }).version;
export const FRONT_BUNDLE = '/opt/pyml-serve/pyml.mjs';
export const FRONT_LAUNCHER = '/usr/local/bin/pyml';

export interface ServeImageOptions {
  out: string;
  /** The module that runs `pyml serve` (the CLI's serve-front.ts): passed in, since the CLI is above this package. */
  frontEntry: string;
  tar?: string;
  store?: BlobStore;
  sourceDateEpoch?: number;
  log?: (message: string) => void;
}

export interface ServeImage {
  digest: string;
  layout: string;
  tar?: string;
  refName: string;
  bundleBytes: number;
}

/**
 * The front's image for a pod: this machine's node (the same base layer pyml's model images get, so a registry
 * stores it once) and `pyml serve` bundled into one file, with `pyml` on PATH. It runs `pyml serve` only; models
 * come from other containers through `--model NAME=unix:///…` (or from image refs, with the embedded runner).
 */
export async function buildServeImage(opts: ServeImageOptions): Promise<ServeImage> {
  const log = opts.log ?? (() => {});
  const store = opts.store ?? new BlobStore();
  const epoch = opts.sourceDateEpoch ?? 0;
  log('bundling pyml serve');
  const bundle = await bundleFront(opts.frontEntry);
  if (!bundle.some((file) => file.path === FRONT_BUNDLE)) throw new Error(`bundling pyml serve gave no ${FRONT_BUNDLE}`);
  const { files } = await nodeBaseFiles();
  log('base layer (this machine\'s node)');
  const base = await buildLayer(files, { store, compression: 'gzip', sourceDateEpoch: epoch, annotations: partAnnotations(PART.base, 'base') });
  const front = await buildLayer([
    ...bundle.map((file) => ({ path: file.path, content: file.content, mode: 0o644 })),
    // Extensionless, so node reads it as CommonJS; the dynamic import loads the ESM bundle.
    { path: FRONT_LAUNCHER, content: `#!/usr/local/bin/node\nimport(${JSON.stringify(FRONT_BUNDLE)});\n`, mode: 0o755 },
  ], { store, compression: 'gzip', sourceDateEpoch: epoch, annotations: partAnnotations(PART.serve, 'pyml-serve') });
  const created = createdFromEpoch(epoch);
  let image = emptyImage(hostPlatform(), created);
  image = appendLayers(image, base, front);
  image = withConfig(image, {
    Entrypoint: [FRONT_LAUNCHER],
    Cmd: ['serve', '--help'],
    Env: ['PATH=/usr/local/bin:/usr/bin:/bin', 'NODE_ENV=production'],
    User: `${RUN_AS}:${RUN_AS}`,
    WorkingDir: '/',
    Labels: { 'org.opencontainers.image.title': 'pyml-serve', 'org.opencontainers.image.version': VERSION },
  });
  image = withAnnotations(image, { 'org.opencontainers.image.title': 'pyml-serve', 'org.opencontainers.image.version': VERSION, 'org.opencontainers.image.created': created });
  log(`writing ${opts.out}`);
  const written = await writeLayout(image, path.resolve(opts.out), { store, refName: VERSION });
  if (opts.tar) await writeTarball(image, path.resolve(opts.tar), { refName: VERSION, repoTags: [`pyml-serve:${VERSION}`] });
  return { digest: written.manifestDigest, layout: path.resolve(opts.out), ...(opts.tar ? { tar: path.resolve(opts.tar) } : {}), refName: `pyml-serve:${VERSION}`, bundleBytes: bundle.reduce((sum, file) => sum + Buffer.byteLength(file.content), 0) };
}

/**
 * `pyml serve` as ESM files: the entry (FRONT_BUNDLE) and the chunks its dynamic imports load, without the builder
 * or an engine client. dockerode stays external: it is imported only in the chunks of the Docker runner and the
 * engine reader, which a pod never loads (its models are containers already), so it is not shipped.
 */
async function bundleFront(frontEntry: string): Promise<{ path: string; content: string }[]> {
  const result = await esbuild({
    entryPoints: { [path.posix.basename(FRONT_BUNDLE, '.mjs')]: frontEntry },
    outdir: path.posix.dirname(FRONT_BUNDLE), entryNames: '[name]', chunkNames: 'chunks/[name]-[hash]', outExtension: { '.js': '.mjs' },
    bundle: true, splitting: true, write: false, platform: 'node', format: 'esm', target: 'node20', external: ['dockerode'],
    // From pyml's checkout, @pyml/* packages are bundled from their sources (the `source` export condition); installed, from dist/.
    conditions: import.meta.url.endsWith('.ts') ? ['source'] : [],
    logLevel: 'silent', legalComments: 'none', minifySyntax: true, minifyWhitespace: true,
    banner: { js: "import { createRequire as __pymlCreateRequire } from 'node:module'; const require = __pymlCreateRequire(import.meta.url);" },
  });
  return result.outputFiles.map((file) => ({ path: file.path, content: file.text })).sort((a, b) => a.path.localeCompare(b.path));
}
