import type { Component } from '@pyml/image/pyml-format';
import { formatBytes } from './output.ts';

/**
 * `pyml inspect image`'s contents section: every component, grouped by the part and layer that carries it, in
 * the image's order (base, deps, weights, model, entrypoint).
 */
export function contentsLines(components: Component[]): string[] {
  const counts = new Map<string, number>();
  for (const c of components) counts.set(c.type, (counts.get(c.type) ?? 0) + 1);
  const lines = [`contents  ${components.length} components (${[...counts].map(([type, n]) => `${n} ${type}`).join(', ')})`];
  let group = '';
  for (const c of components) {
    const heading = c.part === c.layer ? c.part : `${c.part} ${c.layer}`;
    if (heading !== group) {
      lines.push(`  ${heading}`);
      group = heading;
    }
    lines.push(`    ${componentLine(c)}`);
  }
  return lines;
}

function componentLine(c: Component): string {
  const fields: string[] = [];
  if (c.type === 'file' || c.type === 'weights') {
    fields.push(c.type === 'file' ? c.paths?.[0] ?? c.name : c.name);
    if (c.size !== undefined) fields.push(formatBytes(c.size));
    if (c.format) fields.push(c.format);
  } else {
    fields.push(`${c.type} ${c.name}${c.version ? `@${c.version}` : ''}`);
    if (c.license) fields.push(c.license);
    if (c.integrity) fields.push(`${c.integrity.slice(0, 20)}…`);
  }
  if (c.sha256) fields.push(`sha256:${c.sha256.slice(0, 16)}…`);
  if (c.debian && c.type !== 'deb') fields.push(`from deb ${c.debian.package}@${c.debian.version}`);
  if (c.type === 'deb' && c.paths?.length) fields.push(`${c.paths.length} file${c.paths.length === 1 ? '' : 's'}`);
  if (c.type === 'npm' && c.paths?.length && c.part !== 'deps') fields.push(`in ${c.paths.join(', ')}`);
  return fields.join('  ');
}
