import { existsSync } from 'node:fs';
import { join } from 'node:path';
import type { UnpackedImage } from './unpacked-image.ts';

/** How to run an unpacked image's entrypoint on this host as an ordinary (non-root) process. */
export interface EntrypointCommand {
  file: string;
  args: string[];
  env: Record<string, string>;
  cwd: string;
}

/** The dynamic loader and library directories of the image's architecture, as Debian lays them out. */
const LOADERS = [
  { loader: 'lib64/ld-linux-x86-64.so.2', triple: 'x86_64-linux-gnu' },
  { loader: 'lib/ld-linux-aarch64.so.1', triple: 'aarch64-linux-gnu' },
];

/**
 * The image's own node, started through the image's own dynamic loader with the image's libraries, so nothing of
 * the host's libc or node is used and no chroot (root) is needed: `ROOTFS/lib64/ld-linux… --library-path … ROOTFS/
 * usr/local/bin/node ROOTFS/opt/pyml/runtime/entrypoint.mjs <args>`. Absolute paths in the image's entrypoint argv
 * are taken inside the rootfs. The environment is the image's (Env), PYML_ROOT pointing into the rootfs, the
 * host's PYML_* knobs (log levels) and `extraEnv`; nothing else leaks in from the host.
 */
export function entrypointCommand(image: UnpackedImage, args: string[], extraEnv: Record<string, string> = {}): EntrypointCommand {
  const argv = image.manifest.entrypoint?.argv ?? image.config.Entrypoint;
  if (!argv?.length) throw new Error(`image ${image.ref}: pyml.json has no entrypoint.argv and the image config no Entrypoint`);
  const inRoot = (p: string) => (p.startsWith('/') ? join(image.rootfs, p) : p);
  const found = LOADERS.find((l) => existsSync(join(image.rootfs, l.loader)));
  if (!found) throw new Error(`image ${image.ref}: no dynamic loader found (looked for ${LOADERS.map((l) => `/${l.loader}`).join(', ')})`);
  const libraryPath = [`lib/${found.triple}`, `usr/lib/${found.triple}`, 'lib', 'usr/lib']
    .map((d) => join(image.rootfs, d))
    .filter((d) => existsSync(d))
    .join(':');
  const env: Record<string, string> = {};
  for (const entry of image.config.Env ?? []) {
    const eq = entry.indexOf('=');
    if (eq > 0) env[entry.slice(0, eq)] = entry.slice(eq + 1);
  }
  for (const [k, v] of Object.entries(process.env)) if (k.startsWith('PYML_') && v !== undefined && k !== 'PYML_ROOT') env[k] = v;
  Object.assign(env, extraEnv, { PYML_ROOT: image.pymlRoot });
  return {
    file: join(image.rootfs, found.loader),
    args: ['--library-path', libraryPath, inRoot(argv[0]), ...argv.slice(1).map(inRoot), ...args],
    env,
    cwd: image.config.WorkingDir ? inRoot(image.config.WorkingDir) : image.pymlRoot,
  };
}
