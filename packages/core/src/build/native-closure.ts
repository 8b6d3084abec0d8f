import { realpath } from 'node:fs/promises';
import path from 'node:path';
import { isNativeFile, sharedLibrariesOf } from './shared-libraries.ts';
import type { DependencyLayer } from '../types.ts';

/**
 * A dependency layer's native files (.node, .so) may load system libraries the base lacks: add those to the
 * layer itself, so the image never relies on the host at run time.
 */
export async function addMissingSystemLibraries(layers: DependencyLayer[], baseLibraries: string[], lddCacheDir?: string): Promise<void> {
  const present = new Set(baseLibraries.map((l) => path.basename(l)));
  for (const layer of layers) {
    const inLayer = new Set(layer.files.map((f) => path.basename(f.path)));
    const needed = new Set<string>();
    for (const file of layer.files) {
      if (!file.source || !isNativeFile(file.path)) continue;
      for (const lib of await sharedLibrariesOf(file.source, lddCacheDir)) {
        const name = path.basename(lib);
        if (!present.has(name) && !inLayer.has(name)) needed.add(lib);
      }
    }
    for (const lib of [...needed].sort()) {
      layer.files.push({ path: lib, source: await realpath(lib), mode: 0o755 });
      inLayer.add(path.basename(lib));
    }
  }
}
