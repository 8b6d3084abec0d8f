import { DEFAULT_UNPACK_LIMITS, MAX_LAYER_EXPANSION_ENV, MAX_UNPACKED_BYTES_ENV, parseByteSize } from '@pyml/image';
import { usage } from './output.ts';

/**
 * --max-unpacked-bytes on the commands that unpack an image (predict, serve, batch). It sets PYML_MAX_UNPACKED_BYTES
 * for this process and its children, so every unpack the command causes (a model's restart, batch's workers) has
 * the same limit.
 */
export const maxUnpackedOption = { 'max-unpacked-bytes': { type: 'string' } } as const;

/** The option's help, its description starting at `column` (under the option when the name is wider). */
export function maxUnpackedHelp(column: number): string {
  const name = '  --max-unpacked-bytes SIZE';
  const { maxImageBytes, maxLayerExpansion, minLayerBytes } = DEFAULT_UNPACK_LIMITS;
  const lines = [
    `the most the image may unpack to (default ${maxImageBytes / 1024 ** 3}G; or ${MAX_UNPACKED_BYTES_ENV});`,
    `a gzip layer may also expand at most ${maxLayerExpansion}x, to at least ${minLayerBytes / 1024 ** 2}M (${MAX_LAYER_EXPANSION_ENV})`,
  ].map((line) => ' '.repeat(column) + line);
  if (name.length < column) lines[0] = name + lines[0].slice(name.length);
  else lines.unshift(name);
  return lines.join('\n');
}

export function applyMaxUnpackedBytes(value: string | undefined): void {
  if (value === undefined) return;
  try {
    parseByteSize(value, '--max-unpacked-bytes');
  } catch (error) {
    throw usage((error as Error).message);
  }
  process.env[MAX_UNPACKED_BYTES_ENV] = value;
}
