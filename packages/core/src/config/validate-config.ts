import type { ErrorObject, ValidateFunction } from 'ajv';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { didYouMean } from '@pyml/errors';
import { pymlCacheDir } from '@pyml/image';
import { ConfigError } from '../errors.ts';
import type { UserConfig } from '../types.ts';
import { precompiledValidator } from './precompiled-validator.ts';

// Shipped inside @pyml/core (its `schema` directory), two levels above both src/config/ and dist/config/.
const schemaPath = fileURLToPath(new URL('../../schema/pyml.config.schema.json', import.meta.url));
const schema = JSON.parse(readFileSync(schemaPath, 'utf8')) as Record<string, unknown>;

// x-expected: what an anyOf expects, said once instead of one line per alternative. Compiled on first use, once per
// machine (see precompiled-validator.ts): ajv's compile was most of a command's start-up.
let compiled: ValidateFunction | undefined;
const validator = () => (compiled ??= precompiledValidator(schema, ['x-hint', 'x-expected'], pymlCacheDir()));

/** JSON path in the style users read: `signature.inputs[0].dtype`. */
function fieldPath(instancePath: string, extra?: string): string {
  const parts = instancePath.split('/').filter(Boolean).map((p) => p.replace(/~1/g, '/').replace(/~0/g, '~'));
  if (extra) parts.push(extra);
  let out = '';
  for (const p of parts) out += /^\d+$/.test(p) ? `[${p}]` : out ? `.${p}` : p;
  return out || '(root)';
}

function hintAt(schemaPath: string): string | undefined {
  // Walk the schema along the failing keyword's path, keeping the nearest x-hint.
  let node: unknown = schema;
  let hint: string | undefined;
  for (const seg of schemaPath.replace(/^#\//, '').split('/')) {
    if (node && typeof node === 'object') {
      const h = (node as Record<string, unknown>)['x-hint'];
      if (typeof h === 'string') hint = h;
      if (seg.startsWith('#')) node = schema;
      node = (node as Record<string, unknown>)[seg];
    }
  }
  return hint;
}

function describe(error: ErrorObject): { field: string; expected: string; hint?: string } {
  const p = error.params as Record<string, unknown>;
  switch (error.keyword) {
    case 'required':
      return { field: fieldPath(error.instancePath, String(p.missingProperty)), expected: 'is required but missing',
        hint: hintAt(`${error.schemaPath.replace(/\/required$/, '')}/properties/${String(p.missingProperty)}`) };
    case 'additionalProperties': {
      const known = knownFields(error.schemaPath);
      const suggestion = didYouMean(String(p.additionalProperty), known);
      return { field: fieldPath(error.instancePath, String(p.additionalProperty)), expected: `is not a known field${suggestion ? `; ${suggestion}` : ''}`,
        hint: `known fields here: ${known.join(', ')}` };
    }
    case 'anyOf':
      return { field: fieldPath(error.instancePath), expected: expectedAt(error.schemaPath) ?? 'does not match any of the allowed forms', hint: hintAt(error.schemaPath) };
    case 'enum':
      return { field: fieldPath(error.instancePath), expected: `must be one of ${(p.allowedValues as unknown[]).map((v) => JSON.stringify(v)).join(', ')}`, hint: hintAt(error.schemaPath) };
    default:
      return { field: fieldPath(error.instancePath), expected: error.message ?? 'is invalid', hint: hintAt(error.schemaPath) };
  }
}

/** The x-expected of the schema node holding the anyOf at `schemaPath`. */
function expectedAt(schemaPath: string): string | undefined {
  let node: unknown = schema;
  for (const seg of schemaPath.replace(/^#\/?/, '').split('/').filter(Boolean).slice(0, -1)) node = (node as Record<string, unknown>)?.[seg];
  const expected = (node as Record<string, unknown> | undefined)?.['x-expected'];
  return typeof expected === 'string' ? expected : undefined;
}

function knownFields(schemaPath: string): string[] {
  let node: unknown = schema;
  const segments = schemaPath.replace(/^#\/?/, '').split('/').filter(Boolean);
  if (segments.at(-1) === 'additionalProperties') segments.pop();
  for (const seg of segments) node = (node as Record<string, unknown>)?.[seg];
  return Object.keys(((node as Record<string, unknown>)?.properties as object) ?? {});
}

/** Validates the config object against @pyml/core's schema/pyml.config.schema.json; every error names file, field, expectation. */
export function validateUserConfig(config: unknown, file: string): UserConfig {
  const validate = validator();
  if (validate(config)) return config as UserConfig;
  const seen = new Set<string>();
  const lines: string[] = [];
  for (const error of validate.errors ?? []) {
    // Each alternative's own complaint is noise: the anyOf's error says what any of them would take.
    if (error.schemaPath.includes('/anyOf/')) continue;
    const d = describe(error);
    const line = `${file}: ${d.field} ${d.expected}${d.hint ? ` (hint: ${d.hint})` : ''}`;
    if (seen.has(line)) continue;
    seen.add(line);
    lines.push(line);
  }
  // Each line carries its own hint, so the error itself has none to repeat.
  throw new ConfigError(lines.join('\n'));
}
