import { access, readFile } from 'node:fs/promises';
import { homedir } from 'node:os';
import { join } from 'node:path';
import { type ImageSource, openImage, unpack } from '@pyml/image';
import { ENTRYPOINT_PATH, MANIFEST_PATH, PYML_ROOT, type PymlManifest } from '@pyml/runtime/manifest';

/**
 * An image's filesystem unpacked on this machine, so its own node, libraries, runtime and weights run as a child
 * process without root or a container engine. One copy per manifest digest under $PYML_CACHE_DIR/rootfs/.
 */
export interface UnpackedImage {
  ref: string;
  manifestDigest: string;
  manifest: PymlManifest;
  rootfs: string;
}

export function cacheDir(env: NodeJS.ProcessEnv = process.env): string {
  return env.PYML_CACHE_DIR ?? join(homedir(), '.cache', 'pyml');
}

const exists = (path: string) => access(path).then(() => true, () => false);

function rootfsFor(manifestDigest: string): string {
  return join(cacheDir(), 'rootfs', manifestDigest.replace(':', '-'));
}

/** pyml.json from an unpacked copy when there is one (reading it from layers means decompressing them). */
async function manifestOf(source: ImageSource): Promise<PymlManifest> {
  const rootfs = rootfsFor(source.manifestDigest);
  const bytes = (await exists(join(rootfs, ENTRYPOINT_PATH))) ? await readFile(join(rootfs, MANIFEST_PATH)) : await source.readFile(MANIFEST_PATH);
  if (!bytes) throw new Error(`image ${source.ref}: no ${MANIFEST_PATH}; is it a pyml image?`);
  return JSON.parse(bytes.toString('utf8')) as PymlManifest;
}

/** Reads pyml.json without unpacking the image (for checks that must fail before any work). */
export async function readImageManifest(ref: string): Promise<{ manifest: PymlManifest; manifestDigest: string }> {
  const source = await openImage(ref);
  try {
    return { manifest: await manifestOf(source), manifestDigest: source.manifestDigest };
  } finally {
    await source.close();
  }
}

/** Unpacks `ref` once into the cache (unpack works in a temp dir and renames), and returns where it is. */
export async function unpackedImage(ref: string, options: { onProgress?: (bytes: number) => void } = {}): Promise<UnpackedImage> {
  const source = await openImage(ref);
  try {
    const rootfs = rootfsFor(source.manifestDigest);
    const ready = () => exists(join(rootfs, ENTRYPOINT_PATH));
    if (!(await ready())) {
      try {
        await unpack(source, rootfs, { onProgress: options.onProgress });
      } catch (error) {
        // Another process may have unpacked the same digest at the same time; its copy is as good as ours.
        if (!(await ready())) throw error;
      }
    }
    return { ref, manifestDigest: source.manifestDigest, manifest: await manifestOf(source), rootfs };
  } finally {
    await source.close();
  }
}

/**
 * The command that runs the image's entrypoint from an unpacked rootfs: the image's own dynamic loader and libraries
 * (not the host's), its node, its runtime bundle, PYML_ROOT pointing into it.
 */
export function entrypointCommand(rootfs: string, args: string[]): { command: string; args: string[]; env: Record<string, string> } {
  return {
    command: join(rootfs, 'lib64/ld-linux-x86-64.so.2'),
    args: [
      '--library-path', `${join(rootfs, 'lib/x86_64-linux-gnu')}:${join(rootfs, 'usr/lib/x86_64-linux-gnu')}`,
      join(rootfs, 'usr/local/bin/node'),
      join(rootfs, ENTRYPOINT_PATH),
      ...args,
    ],
    env: { PYML_ROOT: join(rootfs, PYML_ROOT) },
  };
}
