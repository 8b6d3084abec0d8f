import { createHash } from 'node:crypto';
import { mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import type { ValidateFunction } from 'ajv';

// ajv is CommonJS: required synchronously, and only when a validator must be compiled.
const require = createRequire(import.meta.url);

/**
 * An ajv validator (allErrors, strict, these extra annotation keywords) for `schema`, compiled once per machine:
 * ajv's compile (the schema, and ajv's meta-schema to check it: ~0.4 s of CPU, most of `pyml build`'s start-up)
 * runs the first time, its standalone code is kept in `cacheDir`, and later processes load that code in
 * milliseconds without loading ajv's compiler. It is the code ajv would run: same answers, same errors.
 */
export function precompiledValidator(schema: object, keywords: string[], cacheDir: string): ValidateFunction {
  const ajvVersion = (JSON.parse(readFileSync(require.resolve('ajv/package.json'), 'utf8')) as { version: string }).version;
  const key = createHash('sha256').update(JSON.stringify([ajvVersion, keywords, schema])).digest('hex').slice(0, 32);
  const file = path.join(cacheDir, 'validators', `${key}.cjs`);
  try {
    return require(file) as ValidateFunction;
  } catch {
    // Not compiled on this machine yet (or unreadable): compile below.
  }
  const { Ajv } = require('ajv') as typeof import('ajv');
  const standaloneCode = (require('ajv/dist/standalone') as typeof import('ajv/dist/standalone/index.js')).default;
  const ajv = new Ajv({ allErrors: true, strict: true, code: { source: true } });
  for (const keyword of keywords) ajv.addKeyword({ keyword, schemaType: 'string' });
  const validate = ajv.compile(schema);
  // The code requires ajv's runtime helpers by package name; from the cache they must be found where ajv is.
  const code = standaloneCode(ajv, validate).replace(/require\("(ajv\/dist\/runtime\/[\w.]+)"\)/g, (_: string, id: string) => `require(${JSON.stringify(require.resolve(id))})`);
  try {
    mkdirSync(path.dirname(file), { recursive: true });
    const temp = `${file}.${process.pid}.tmp`;
    writeFileSync(temp, code);
    renameSync(temp, file);
  } catch {
    // A read-only cache only costs the next process this compile again.
  }
  return validate;
}
