import { open, readdir, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { EXIT, PymlError } from '@pyml/errors';
import { DOCKER_DAEMON_PREFIX, looksLikeRegistryRef } from '@pyml/registry/reference';

const REF_FORMS = 'REF is an OCI image layout directory (pyml build writes PROJECT/.pyml/image), an image tarball, NAME@VERSION (or NAME:VERSION) of an image pyml images lists, HOST[:PORT]/REPO:TAG in a registry, or docker-daemon:NAME:TAG';
const CONFIG_FILE = /^pyml\.config\.(ts|mts|js|mjs|json|yaml|yml)$/;

/** The config file's name when `dir` is a model project (a config and no index.json), else undefined. */
export async function projectConfigIn(dir: string): Promise<string | undefined> {
  const names = await readdir(dir).catch(() => [] as string[]);
  return names.includes('index.json') ? undefined : names.find((n) => CONFIG_FILE.test(n));
}

/**
 * Every command that takes an image checks a local one the same way before opening it, so the same wrong input
 * gets the same answer and exit code (2: bad input) from predict, serve, batch, push, inspect and diff: a path
 * that is not there, a directory that is not an OCI layout (a model project gets the command that builds it), a
 * file that is not a tarball. Registry and engine refs are left to the command (failing there is exit 1).
 */
export async function checkImageRef(ref: string): Promise<void> {
  if (ref.startsWith(DOCKER_DAEMON_PREFIX)) return;
  const info = await stat(ref).catch(() => undefined);
  if (!info) {
    if (looksLikeRegistryRef(ref)) return;
    throw new PymlError(`no image at ${ref}: no such file or directory`, EXIT.usage, REF_FORMS);
  }
  if (info.isDirectory()) {
    const config = await projectConfigIn(ref);
    if (config) {
      const built = await stat(join(ref, '.pyml', 'image', 'index.json')).then(() => true, () => false);
      throw new PymlError(`${ref} is a model project (${config}), not an image`, EXIT.usage,
        built ? `its last build is ${join(ref, '.pyml', 'image')}; or rebuild it: pyml build ${ref}` : `build it first: pyml build ${ref} (the image goes to ${join(ref, '.pyml', 'image')})`);
    }
    if (await stat(join(ref, 'index.json')).then(() => true, () => false)) return;
    throw new PymlError(`${ref} is not an image: a directory with no index.json (not an OCI image layout)`, EXIT.usage, REF_FORMS);
  }
  if (info.isFile()) {
    const head = Buffer.alloc(512);
    const file = await open(ref, 'r');
    let read = 0;
    try {
      ({ bytesRead: read } = await file.read(head, 0, 512, 0));
    } finally {
      await file.close();
    }
    const gzip = read >= 2 && head[0] === 0x1f && head[1] === 0x8b;
    const tar = read >= 262 && head.subarray(257, 262).toString('latin1') === 'ustar';
    if (!gzip && !tar) throw new PymlError(`${ref} is not an image: a file that is not a tarball (docker save, pyml build --tar)`, EXIT.usage, REF_FORMS);
  }
}
