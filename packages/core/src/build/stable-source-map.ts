import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';

/**
 * Rewrites the `sources` of a source map so they name files the same way from any checkout: files of the project
 * as `project/<path>`, files of a package as `<package name>/<path in package>`. Without this the map (and so the
 * model layer's digest) would depend on where the project and pyml happen to live.
 */
export function stableSourceMap(mapText: string, mapDir: string, projectRoot: string): string {
  const map = JSON.parse(mapText) as { sources?: string[]; sourceRoot?: string };
  map.sources = (map.sources ?? []).map((s) => stableSourceName(path.resolve(mapDir, s), projectRoot));
  delete map.sourceRoot;
  return JSON.stringify(map);
}

const packageNameCache = new Map<string, string | undefined>();

export function stableSourceName(file: string, projectRoot: string): string {
  const rel = path.relative(projectRoot, file);
  if (!rel.startsWith('..') && !path.isAbsolute(rel)) return `project/${rel.split(path.sep).join('/')}`;
  let dir = path.dirname(file);
  while (dir !== path.dirname(dir)) {
    const name = packageName(dir);
    if (name) return `${name}/${path.relative(dir, file).split(path.sep).join('/')}`;
    dir = path.dirname(dir);
  }
  return path.basename(file);
}

function packageName(dir: string): string | undefined {
  if (packageNameCache.has(dir)) return packageNameCache.get(dir);
  const pj = path.join(dir, 'package.json');
  let name: string | undefined;
  if (existsSync(pj)) {
    try { name = (JSON.parse(readFileSync(pj, 'utf8')) as { name?: string }).name; } catch { name = undefined; }
  }
  packageNameCache.set(dir, name);
  return name;
}
