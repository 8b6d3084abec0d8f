import { InvalidInputError } from '../errors.ts';

/** Deepest nesting a V2 JSON request may have: the body, `inputs`, a tensor, then `data` nested once per dimension. */
export const MAX_JSON_DEPTH = 64;

/**
 * A JSON parser for request bodies that costs little per number. JSON.parse turns a body of N numbers into an
 * array of N tagged values (and a temporary copy while it builds it): a 24 MB body of zeros took 340 MB more.
 * Here a run of numbers becomes a NumberRun (8 bytes a number, in blocks, never copied to grow), nesting is
 * refused past MAX_JSON_DEPTH as it is met, and the body is read as bytes (no string copy of it). Everything else
 * is plain JSON: objects (without a prototype, so a "__proto__" key is just a key), arrays, strings (decoded by
 * JSON.parse when they hold escapes), true, false, null.
 */

/** Numbers of an array in order, as they were parsed; arrays shorter than RUN_MIN stay plain arrays. */
export class NumberRun {
  private readonly blocks: Float64Array[] = [];
  private last = new Float64Array(RUN_BLOCK);
  private fill = 0;
  length = 0;

  push(x: number): void {
    if (this.fill === RUN_BLOCK) {
      this.blocks.push(this.last);
      this.last = new Float64Array(RUN_BLOCK);
      this.fill = 0;
    }
    this.last[this.fill++] = x;
    this.length++;
  }

  forEach(visit: (x: number) => void): void {
    for (const block of this.blocks) for (let i = 0; i < RUN_BLOCK; i++) visit(block[i]);
    for (let i = 0; i < this.fill; i++) visit(this.last[i]);
  }
}

const RUN_BLOCK = 65536;
/** Arrays of numbers at least this long become NumberRuns: shapes and small tensors stay plain arrays. */
const RUN_MIN = 256;

const enum C {
  Tab = 0x09, Lf = 0x0a, Cr = 0x0d, Space = 0x20, Quote = 0x22, Plus = 0x2b, Comma = 0x2c, Minus = 0x2d, Dot = 0x2e,
  Zero = 0x30, Nine = 0x39, Colon = 0x3a, OpenArray = 0x5b, Backslash = 0x5c, CloseArray = 0x5d, LowerE = 0x65,
  UpperE = 0x45, OpenObject = 0x7b, CloseObject = 0x7d,
}

/**
 * Bodies up to this size go through V8's JSON.parse (native, about 5x cheaper than the parser below for a one-row
 * request) once a scan has shown their nesting is within bounds: what JSON.parse costs in memory only matters for
 * long arrays. A body JSON.parse refuses is parsed again below, for its error message.
 */
const NATIVE_PARSE_BYTES = 4 * 1024;

/** Whether no array or object in the body nests deeper than `maxDepth` (brackets inside strings not counted). */
function nestingWithin(buf: Uint8Array, maxDepth: number): boolean {
  let depth = 0;
  let inString = false;
  for (let i = 0; i < buf.length; i++) {
    const c = buf[i];
    if (inString) {
      if (c === C.Backslash) i++;
      else if (c === C.Quote) inString = false;
    } else if (c === C.Quote) inString = true;
    else if (c === C.OpenArray || c === C.OpenObject) {
      if (++depth > maxDepth) return false;
    } else if (c === C.CloseArray || c === C.CloseObject) depth--;
  }
  return true;
}

export function parseJsonBytes(body: Uint8Array, maxDepth = MAX_JSON_DEPTH): unknown {
  const buf = Buffer.from(body.buffer, body.byteOffset, body.byteLength);
  if (buf.length <= NATIVE_PARSE_BYTES && nestingWithin(buf, maxDepth)) {
    try {
      return JSON.parse(buf.toString('utf8'));
    } catch {
      // Not JSON: the parser below says where and why.
    }
  }
  let pos = 0;

  const fail = (what: string): never => {
    throw new InvalidInputError(`request body is not JSON: ${what} at byte ${pos}`);
  };
  const skipSpace = () => {
    while (pos < buf.length) {
      const c = buf[pos];
      if (c !== C.Space && c !== C.Lf && c !== C.Cr && c !== C.Tab) return;
      pos++;
    }
  };

  const parseString = (): string => {
    const start = ++pos;
    let escaped = false;
    for (;;) {
      if (pos >= buf.length) fail('unterminated string');
      const c = buf[pos];
      if (c === C.Quote) break;
      if (c < 0x20) fail('control character in string');
      if (c === C.Backslash) {
        escaped = true;
        pos++;
      }
      pos++;
    }
    const end = pos++;
    if (!escaped) return buf.toString('utf8', start, end);
    try {
      return JSON.parse(buf.toString('utf8', start - 1, end + 1)) as string;
    } catch {
      return fail('bad escape in string');
    }
  };

  const digits = () => {
    const start = pos;
    while (pos < buf.length && buf[pos] >= C.Zero && buf[pos] <= C.Nine) pos++;
    if (pos === start) fail('expected a digit');
  };
  const parseNumber = (): number => {
    const start = pos;
    if (buf[pos] === C.Minus) pos++;
    if (buf[pos] === C.Zero) pos++;
    else digits();
    let simple = pos - start <= 15;
    if (buf[pos] === C.Dot) {
      pos++;
      digits();
      simple = false;
    }
    if (buf[pos] === C.LowerE || buf[pos] === C.UpperE) {
      pos++;
      if (buf[pos] === C.Plus || buf[pos] === C.Minus) pos++;
      digits();
      simple = false;
    }
    if (!simple) return Number(buf.toString('latin1', start, pos));
    // Up to 15 digits: exact in a double, read without making a string.
    let n = 0;
    for (let i = buf[start] === C.Minus ? start + 1 : start; i < pos; i++) n = n * 10 + (buf[i] - C.Zero);
    return buf[start] === C.Minus ? -n : n;
  };

  const literal = (text: string, value: unknown): unknown => {
    if (buf.toString('latin1', pos, pos + text.length) !== text) fail('unexpected character');
    pos += text.length;
    return value;
  };

  const parseArray = (depth: number): unknown[] | NumberRun => {
    pos++;
    const items: unknown[] = [];
    let run: NumberRun | undefined;
    skipSpace();
    if (buf[pos] === C.CloseArray) {
      pos++;
      return items;
    }
    for (;;) {
      skipSpace();
      const value = parseValue(depth);
      if (run && typeof value === 'number') run.push(value);
      else if (run) {
        // A number run that turns out mixed: back to a plain array, as JSON.parse would give.
        run.forEach((x) => items.push(x));
        run = undefined;
        items.push(value);
      } else {
        items.push(value);
        if (items.length === RUN_MIN && items.every((x) => typeof x === 'number')) {
          run = new NumberRun();
          for (const x of items as number[]) run.push(x);
          items.length = 0;
        }
      }
      skipSpace();
      const c = buf[pos++];
      if (c === C.CloseArray) return run ?? items;
      if (c !== C.Comma) fail('expected , or ]');
    }
  };

  const parseObject = (depth: number): Record<string, unknown> => {
    pos++;
    const object = Object.create(null) as Record<string, unknown>;
    skipSpace();
    if (buf[pos] === C.CloseObject) {
      pos++;
      return object;
    }
    for (;;) {
      skipSpace();
      if (buf[pos] !== C.Quote) fail('expected a key');
      const key = parseString();
      skipSpace();
      if (buf[pos++] !== C.Colon) fail('expected :');
      skipSpace();
      object[key] = parseValue(depth);
      skipSpace();
      const c = buf[pos++];
      if (c === C.CloseObject) return object;
      if (c !== C.Comma) fail('expected , or }');
    }
  };

  function parseValue(depth: number): unknown {
    if (pos >= buf.length) fail('unexpected end');
    const c = buf[pos];
    if (c === C.OpenArray || c === C.OpenObject) {
      if (depth >= maxDepth) throw new InvalidInputError(`request body is nested more than ${maxDepth} levels deep`);
      return c === C.OpenArray ? parseArray(depth + 1) : parseObject(depth + 1);
    }
    if (c === C.Quote) return parseString();
    if (c === C.Minus || (c >= C.Zero && c <= C.Nine)) return parseNumber();
    if (c === 0x74) return literal('true', true);
    if (c === 0x66) return literal('false', false);
    if (c === 0x6e) return literal('null', null);
    return fail('unexpected character');
  }

  skipSpace();
  const value = parseValue(0);
  skipSpace();
  if (pos < buf.length) fail('unexpected data after the value');
  return value;
}
