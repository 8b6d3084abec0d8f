import { realpath } from 'node:fs/promises';
import { sharedLibrariesOf } from './shared-libraries.ts';
import type { LayerFile } from '../types.ts';

export const NODE_IN_IMAGE = '/usr/local/bin/node';

/** glibc companions that native addons commonly load besides what node itself needs. */
const GLIBC_COMPANIONS = ['librt.so.1', 'libdl.so.2', 'libpthread.so.0', 'libm.so.6'];

/**
 * The default base: this machine's own `node` binary and the shared libraries it loads, so a build needs no
 * network and no registry. The image's node is the node that built it. `cacheDir` keeps ldd's answer (see
 * sharedLibrariesOf).
 */
export async function nodeBaseFiles(nodeBinary = process.execPath, cacheDir?: string): Promise<{ files: LayerFile[]; libraries: string[] }> {
  const real = await realpath(nodeBinary);
  const libraries = await sharedLibrariesOf(real, cacheDir);
  const libDir = libraries.find((l) => l.includes('/libc.so'))?.replace(/\/[^/]+$/, '');
  const extra = libDir ? GLIBC_COMPANIONS.map((l) => `${libDir}/${l}`) : [];
  const all = [...new Set([...libraries, ...extra])].sort();
  const files: LayerFile[] = [
    { path: NODE_IN_IMAGE, source: real, mode: 0o755 },
    ...(await Promise.all(all.map(async (lib) => ({ path: lib, source: await realpath(lib).catch(() => lib), mode: 0o755 })))),
    ...baseSystemFiles(),
  ];
  return { files, libraries: all };
}

/** What every default base holds besides node and its libraries: /tmp, the socket directory, the users. */
export function baseSystemFiles(): LayerFile[] {
  return [
    { path: '/tmp', directory: true, mode: 0o1777 },
    { path: '/run/pyml', directory: true, mode: 0o755 },
    { path: '/etc/passwd', content: 'root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/usr/sbin/nologin\n' },
    { path: '/etc/group', content: 'root:x:0:\nnogroup:x:65534:\n' },
  ];
}
