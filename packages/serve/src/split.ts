/**
 * A traffic split for the unversioned requests of one model (`--split iris=1:90,2:10`): each version's share of
 * those requests. A request carrying a routing key (see ROUTING_KEY_HEADER) always lands on the same version for
 * a given split, so one caller sees one version; without a key each request draws at random.
 */
export interface TrafficSplit {
  model: string;
  shares: { version: string; weight: number }[];
}

/** The HTTP header, and the gRPC metadata key, whose value pins a caller to one version of a split. */
export const ROUTING_KEY_HEADER = 'pyml-routing-key';

/** `NAME=V:W,V:W...` with integer weights ≥ 0, at least one above 0, each version once. */
export function parseSplit(spec: string): TrafficSplit {
  const m = /^([^=]+)=(.+)$/.exec(spec);
  if (!m) throw new Error(`--split must be NAME=VERSION:WEIGHT,VERSION:WEIGHT..., got '${spec}'`);
  const shares = m[2].split(',').map((part) => {
    const at = part.lastIndexOf(':');
    const version = part.slice(0, at);
    const weight = Number(part.slice(at + 1));
    if (at <= 0 || !Number.isSafeInteger(weight) || weight < 0) throw new Error(`--split ${m[1]}: each share must be VERSION:WEIGHT with an integer weight ≥ 0, got '${part}'`);
    return { version, weight };
  });
  const seen = new Set<string>();
  for (const s of shares) {
    if (seen.has(s.version)) throw new Error(`--split ${m[1]}: version '${s.version}' is given twice`);
    seen.add(s.version);
  }
  if (!shares.some((s) => s.weight > 0)) throw new Error(`--split ${m[1]}: at least one weight must be above 0`);
  return { model: m[1], shares };
}

/** FNV-1a over the key's UTF-16 units: a stable, well-spread number in [0, 2^32) for the sticky choice. */
function hashKey(key: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < key.length; i++) {
    h ^= key.charCodeAt(i);
    h = Math.imul(h, 0x01000193) >>> 0;
  }
  // A final avalanche: short keys differing in one character otherwise land close together.
  h ^= h >>> 16;
  h = Math.imul(h, 0x45d9f3b) >>> 0;
  h ^= h >>> 16;
  return h >>> 0;
}

/**
 * The version a request goes to, among the split's versions that `available` accepts (the others' shares are
 * left out, so a version not loaded yet or retired takes no traffic); undefined when none is available.
 */
export function pickShare(split: TrafficSplit, available: (version: string) => boolean, key?: string): string | undefined {
  let total = 0;
  for (const s of split.shares) if (s.weight > 0 && available(s.version)) total += s.weight;
  if (total === 0) return undefined;
  const point = (key ? hashKey(key) / 2 ** 32 : Math.random()) * total;
  let upTo = 0;
  let last: string | undefined;
  for (const s of split.shares) {
    if (s.weight <= 0 || !available(s.version)) continue;
    upTo += s.weight;
    last = s.version;
    if (point < upTo) return s.version;
  }
  return last;
}
