import { didYouMean } from '@pyml/errors';
import { usage } from './output.ts';

/** What `pyml images --filter` looks at in a row (see commands/images.ts). */
export interface FilterableImage {
  name: string | null;
  version: string | null;
  lastUsed: string;
  held: string[];
  refs: string[];
}

const KEYS = ['reference', 'held', 'since', 'until', 'dangling'] as const;
type Key = (typeof KEYS)[number];
const HELD = ['built', 'pulled', 'unpacked'];

export const filterHelp = `  --filter KEY=VALUE   only the images that match (repeatable: the same key twice is either, keys together all):
                         reference=GLOB   NAME, NAME:VERSION or a pulled reference matches (* and ?)
                         held=built|pulled|unpacked
                         since=WHEN       last used within WHEN (30m, 12h, 7d) or after an ISO time
                         until=WHEN       last used longer ago than WHEN, or before an ISO time
                         dangling=true    no name (an unpacked tree whose image left the cache)`;

const UNITS_MS: Record<string, number> = { s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000, w: 604_800_000 };

/** A duration back from `now` (7d, 12h, 30m, 90s, 2w) or an ISO date/time, as epoch ms. */
function pointInTime(value: string, key: string, now: number): number {
  const duration = /^(\d+)([smhdw])$/.exec(value);
  if (duration) return now - Number(duration[1]) * UNITS_MS[duration[2]!]!;
  const at = Date.parse(value);
  if (/^\d{4}-\d{2}-\d{2}/.test(value) && Number.isFinite(at)) return at;
  throw usage(`--filter ${key}= needs a duration (30m, 12h, 7d) or an ISO date, got '${value}'`);
}

function globRegExp(glob: string): RegExp {
  return new RegExp(`^${glob.replace(/[.+^${}()|[\]\\]/g, '\\$&').replace(/\*/g, '.*').replace(/\?/g, '.')}$`);
}

/**
 * `--filter KEY=VALUE`s as one predicate (Docker's convention: values of one key are alternatives, keys are all
 * required). Bad keys and values are usage errors naming what was expected.
 */
export function imageFilter(specs: string[], now = Date.now()): (image: FilterableImage) => boolean {
  const byKey = new Map<Key, ((image: FilterableImage) => boolean)[]>();
  for (const spec of specs) {
    const eq = spec.indexOf('=');
    const key = spec.slice(0, eq < 0 ? undefined : eq);
    const value = eq < 0 ? '' : spec.slice(eq + 1);
    if (!(KEYS as readonly string[]).includes(key)) {
      const suggestion = didYouMean(key, [...KEYS]);
      throw usage(`--filter key '${key}' is not known${suggestion ? `; ${suggestion}` : ` (keys: ${KEYS.join(', ')})`}`);
    }
    if (eq < 0 || value === '') throw usage(`--filter ${key} needs a value: --filter ${key}=VALUE`);
    let test: (image: FilterableImage) => boolean;
    switch (key as Key) {
      case 'reference': {
        const pattern = globRegExp(value);
        test = (i) => [i.name, i.name && i.version ? `${i.name}:${i.version}` : null, ...i.refs].some((n) => n !== null && pattern.test(n));
        break;
      }
      case 'held':
        if (!HELD.includes(value)) throw usage(`--filter held= must be ${HELD.join(', ')}, got '${value}'`);
        test = (i) => i.held.includes(value);
        break;
      case 'since': {
        const at = pointInTime(value, key, now);
        test = (i) => Date.parse(i.lastUsed) >= at;
        break;
      }
      case 'until': {
        const at = pointInTime(value, key, now);
        test = (i) => Date.parse(i.lastUsed) < at;
        break;
      }
      case 'dangling':
        if (value !== 'true' && value !== 'false') throw usage(`--filter dangling= must be true or false, got '${value}'`);
        test = (i) => (i.name === null) === (value === 'true');
        break;
    }
    byKey.set(key as Key, [...(byKey.get(key as Key) ?? []), test]);
  }
  return (image) => [...byKey.values()].every((alternatives) => alternatives.some((t) => t(image)));
}
