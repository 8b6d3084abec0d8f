/**
 * A Python environment made beforehand (`python3.11 -m venv env && env/bin/pip install ...`, or any site-packages
 * directory), shipped as it is into /opt/pyml/site-packages, first on the sidecar's sys.path. Nothing is installed
 * at build time; the environment must be for the image's Python (3.11), since native wheels are built for it.
 * Byte-code caches are left out: their timestamps would not match the layer's, and the image is read-only.
 */
import { createHash } from 'node:crypto';
import { existsSync } from 'node:fs';
import { readFile, readlink, stat } from 'node:fs/promises';
import { join, posix } from 'node:path';
import type { DependencyLayer, LayerFile } from '@pyml/core/types';
import { IMAGE_SITE_PACKAGES } from './adapter.ts';
import { PYTHON_VERSION } from './python-env.ts';
import { installedEntries, walk } from './requirements-layer.ts';

export interface EnvironmentOptions {
  /** A virtual environment's directory (with pyvenv.cfg) or a site-packages directory. */
  environment: string;
  cacheDir: string;
  log(message: string): void;
}

/** The site-packages directory of `dir`, checking a virtual environment's Python version against the image's. */
async function sitePackagesOf(dir: string): Promise<string> {
  const info = await stat(dir).catch(() => undefined);
  if (!info?.isDirectory()) throw new Error(`python({ environment }): ${dir} is not a directory (expected a virtual environment or a site-packages directory)`);
  const cfg = join(dir, 'pyvenv.cfg');
  if (!existsSync(cfg)) return dir;
  const text = await readFile(cfg, 'utf8');
  const version = /^\s*version(?:_info)?\s*=\s*(\d+\.\d+)/m.exec(text)?.[1];
  if (version !== PYTHON_VERSION) {
    throw new Error(`python({ environment }): ${cfg} says Python ${version ?? '(no version)'}; the image runs Python ${PYTHON_VERSION}, so make the environment with python${PYTHON_VERSION} -m venv`);
  }
  const site = join(dir, 'lib', `python${PYTHON_VERSION}`, 'site-packages');
  if (!existsSync(site)) throw new Error(`python({ environment }): ${dir} has no lib/python${PYTHON_VERSION}/site-packages`);
  return site;
}

export async function environmentLayer(o: EnvironmentOptions): Promise<DependencyLayer> {
  const site = await sitePackagesOf(o.environment);
  const found = (await walk(site)).filter((f) => !f.rel.split('/').includes('__pycache__') && !f.rel.endsWith('.pyc'));
  const hash = createHash('sha256').update('environment-1\0');
  const files: LayerFile[] = [{ path: IMAGE_SITE_PACKAGES, directory: true, mode: 0o755 }];
  for (const f of found) {
    const path = posix.join(IMAGE_SITE_PACKAGES, f.rel);
    if (f.kind === 'dir') files.push({ path, directory: true, mode: 0o755 });
    else if (f.kind === 'link') {
      const target = await readlink(f.full);
      hash.update(`${f.rel}\0->${target}\0`);
      files.push({ path, linkTarget: target });
    } else {
      const s = await stat(f.full);
      hash.update(`${f.rel}\0${s.size}\0${s.mtimeMs}\0${f.mode}\0`);
      files.push({ path, source: f.full, mode: f.mode });
    }
  }
  const entries = await installedEntries(site);
  if (!entries.length) throw new Error(`python({ environment }): ${site} holds no installed distribution (no *.dist-info)`);
  o.log(`python: environment ${o.environment}: ${entries.length} distributions, ${found.length} files`);
  return { name: 'python-environment', files, entries, cacheKey: `python-environment/${hash.digest('hex')}` };
}
