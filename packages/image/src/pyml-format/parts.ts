/** The layer annotation naming which part of a pyml image a layer is (base, deps, weights, model, entrypoint). */
export const PART_ANNOTATION = 'dev.pyml.part';
/** The layer annotation telling layers of one part apart (e.g. one deps layer per dependency). */
export const PART_NAME_ANNOTATION = 'dev.pyml.part.name';

/** The parts of a model image, bottom to top, and the one part of the serve front's image. */
export const PART = {
  base: 'base',
  deps: 'deps',
  weights: 'weights',
  model: 'model',
  entrypoint: 'entrypoint',
  serve: 'serve',
} as const;

/** The annotations a layer of `part` carries. */
export function partAnnotations(part: string, name: string): Record<string, string> {
  return { [PART_ANNOTATION]: part, [PART_NAME_ANNOTATION]: name };
}
