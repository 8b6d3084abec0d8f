/**
 * Python packages from a requirements.txt, installed offline from a wheel directory
 * (`pip install --no-index --find-links WHEELS -r requirements.txt --target ...`) with the image's own interpreter,
 * into /opt/pyml/site-packages (first on the sidecar's sys.path, before Debian's dist-packages). Installed once
 * per (requirements text, wheel files) into the plugin cache; the layer's cache key is that same hash.
 */
import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync } from 'node:fs';
import { lstat, mkdir, readFile, readdir, readlink, rename, rm, stat, writeFile } from 'node:fs/promises';
import { join, posix, relative, sep } from 'node:path';
import { promisify } from 'node:util';
import type { DependencyEntry, DependencyLayer, LayerFile } from '@pyml/core/types';
import { IMAGE_SITE_PACKAGES } from './adapter.ts';

const run = promisify(execFile);

export interface RequirementsOptions {
  requirements: string;
  wheels: string;
  python: string;
  cacheDir: string;
  log(message: string): void;
}

export async function walk(dir: string, prefix = ''): Promise<{ rel: string; full: string; kind: 'file' | 'dir' | 'link'; mode: number }[]> {
  const out: { rel: string; full: string; kind: 'file' | 'dir' | 'link'; mode: number }[] = [];
  for (const name of (await readdir(dir)).sort()) {
    const full = join(dir, name);
    const rel = prefix ? `${prefix}/${name}` : name;
    const s = await lstat(full);
    if (s.isDirectory()) { out.push({ rel, full, kind: 'dir', mode: 0o755 }); out.push(...(await walk(full, rel))); }
    else if (s.isSymbolicLink()) out.push({ rel, full, kind: 'link', mode: 0o777 });
    else if (s.isFile()) out.push({ rel, full, kind: 'file', mode: s.mode & 0o111 ? 0o755 : 0o644 });
  }
  return out;
}

/** name/version/licence of every installed distribution, from its .dist-info/METADATA. */
export async function installedEntries(site: string): Promise<DependencyEntry[]> {
  const entries: DependencyEntry[] = [];
  for (const name of (await readdir(site)).sort()) {
    if (!name.endsWith('.dist-info')) continue;
    const meta = await readFile(join(site, name, 'METADATA'), 'utf8').catch(() => '');
    const field = (f: string) => new RegExp(`^${f}:\\s*(.+)$`, 'm').exec(meta)?.[1]?.trim();
    const n = field('Name');
    const v = field('Version');
    if (!n || !v) continue;
    const license = field('License');
    entries.push({ name: n, version: v, type: 'pypi', ...(license && license !== 'UNKNOWN' ? { license } : {}) });
  }
  return entries;
}

export async function requirementsLayer(o: RequirementsOptions): Promise<DependencyLayer> {
  const reqText = await readFile(o.requirements, 'utf8').catch(() => { throw new Error(`python({ requirements }): cannot read ${o.requirements}`); });
  const wheelStat = await stat(o.wheels).catch(() => undefined);
  if (!wheelStat?.isDirectory()) throw new Error(`python({ wheels }): ${o.wheels} is not a directory of wheels (pip install --no-index --find-links needs one)`);
  const hash = createHash('sha256').update('requirements-1\0').update(reqText).update('\0');
  for (const name of (await readdir(o.wheels)).sort()) {
    const s = await stat(join(o.wheels, name));
    if (s.isFile()) hash.update(`${name}\0${s.size}\0${s.mtimeMs}\0`);
  }
  const key = hash.digest('hex');
  const base = join(o.cacheDir, 'python-requirements');
  const site = join(base, key.slice(0, 32));
  if (!existsSync(site)) {
    o.log(`python: pip install --no-index --find-links ${o.wheels} -r ${o.requirements}`);
    const temp = `${site}.${process.pid}.tmp`;
    await rm(temp, { recursive: true, force: true });
    await mkdir(temp, { recursive: true });
    try {
      await run(o.python, ['-m', 'pip', 'install', '--no-index', '--find-links', o.wheels, '-r', o.requirements, '--target', temp,
        '--no-compile', '--disable-pip-version-check', '--no-warn-script-location', '--quiet'], { maxBuffer: 1 << 24, env: { ...process.env, PIP_CONFIG_FILE: '/dev/null', PYTHONDONTWRITEBYTECODE: '1' } });
      // Byte code that stays valid in a layer (whose mtimes are reset): unchecked hash-based pycs (PEP 552).
      await run(o.python, ['-m', 'compileall', '-q', '--invalidation-mode', 'unchecked-hash', temp], { maxBuffer: 1 << 24 });
    } catch (error) {
      await rm(temp, { recursive: true, force: true });
      const e = error as { stderr?: string; message: string };
      throw new Error(`python: installing ${o.requirements} from ${o.wheels} failed: ${(e.stderr ?? '').trim() || e.message}`);
    }
    await rename(temp, site);
  }
  const files: LayerFile[] = [{ path: IMAGE_SITE_PACKAGES, directory: true, mode: 0o755 }];
  for (const f of await walk(site)) {
    const path = posix.join(IMAGE_SITE_PACKAGES, f.rel.split(sep).join('/'));
    if (f.kind === 'dir') files.push({ path, directory: true, mode: 0o755 });
    else if (f.kind === 'link') files.push({ path, linkTarget: await readlink(f.full) });
    else files.push({ path, source: f.full, mode: f.mode });
  }
  const entries = await installedEntries(site);
  if (!entries.length) throw new Error(`python: ${relative(process.cwd(), o.requirements)} installed no distribution`);
  await writeFile(join(base, `${key.slice(0, 32)}.key`), key).catch(() => {});
  return { name: 'python-requirements', files, entries, cacheKey: `python-requirements/${key}` };
}
