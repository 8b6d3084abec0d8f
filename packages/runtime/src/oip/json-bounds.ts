import { InvalidInputError } from '../errors.ts';

/** Deepest nesting a V2 JSON request may have: the body, `inputs`, a tensor, then `data` nested once per dimension. */
export const MAX_JSON_DEPTH = 64;

const QUOTE = 0x22;
const BACKSLASH = 0x5c;
const OPEN_ARRAY = 0x5b;
const OPEN_OBJECT = 0x7b;
const CLOSE_ARRAY = 0x5d;
const CLOSE_OBJECT = 0x7d;

/**
 * Refuses a JSON body nested deeper than `maxDepth` before JSON.parse sees it. A hand-written scan rather than a
 * parser option because JSON.parse has none: it builds whatever it is given, and a `data` array nested 100,000 deep
 * then overflows the stack of whatever walks it (and costs memory per level). The scan only tracks brackets
 * outside strings, one pass with no allocation, and leaves every other error to JSON.parse.
 */
export function checkJsonDepth(body: Uint8Array, maxDepth = MAX_JSON_DEPTH): void {
  let depth = 0;
  let inString = false;
  for (let i = 0; i < body.length; i++) {
    const c = body[i];
    if (inString) {
      if (c === BACKSLASH) i++;
      else if (c === QUOTE) inString = false;
    } else if (c === QUOTE) inString = true;
    else if (c === OPEN_ARRAY || c === OPEN_OBJECT) {
      if (++depth > maxDepth) throw new InvalidInputError(`request body is nested more than ${maxDepth} levels deep`);
    } else if (c === CLOSE_ARRAY || c === CLOSE_OBJECT) depth--;
  }
}
