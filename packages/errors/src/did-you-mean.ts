/**
 * "Did you mean": the closest of the known words to what was typed, by edit distance, if it is close enough.
 * Optimal string alignment (Levenshtein plus the swap of two neighbours), so `biuld` is one edit from `build`:
 * transposed letters are the commonest typo, and plain Levenshtein counts them as two.
 */
export function editDistance(a: string, b: string): number {
  if (a === b) return 0;
  const rows = a.length + 1;
  const cols = b.length + 1;
  const d: number[][] = Array.from({ length: rows }, (_, i) => Array.from({ length: cols }, (_, j) => (i === 0 ? j : j === 0 ? i : 0)));
  for (let i = 1; i < rows; i++) {
    for (let j = 1; j < cols; j++) {
      const cost = a[i - 1] === b[j - 1] ? 0 : 1;
      d[i]![j] = Math.min(d[i - 1]![j]! + 1, d[i]![j - 1]! + 1, d[i - 1]![j - 1]! + cost);
      if (i > 1 && j > 1 && a[i - 1] === b[j - 2] && a[i - 2] === b[j - 1]) d[i]![j] = Math.min(d[i]![j]!, d[i - 2]![j - 2]! + 1);
    }
  }
  return d[a.length]![b.length]!;
}

/**
 * The known word closest to `typed` (case-insensitive), or undefined when none is close: at most a third of the
 * longer word's letters edited (at least 1, at most 3), or `typed` is a prefix of exactly one known word.
 */
export function closest(typed: string, known: Iterable<string>): string | undefined {
  const t = typed.toLowerCase();
  let best: string | undefined;
  let bestDistance = Infinity;
  const candidates = [...known];
  for (const k of candidates) {
    const dist = editDistance(t, k.toLowerCase());
    const limit = Math.min(3, Math.max(1, Math.floor(Math.max(t.length, k.length) / 3)));
    if (dist <= limit && dist < bestDistance) {
      best = k;
      bestDistance = dist;
    }
  }
  if (best !== undefined) return best;
  const prefixed = t.length >= 2 ? candidates.filter((k) => k.toLowerCase().startsWith(t)) : [];
  return prefixed.length === 1 ? prefixed[0] : undefined;
}

/** `did you mean 'build'?`, or undefined. `quote` formats the suggestion (default: in single quotes). */
export function didYouMean(typed: string, known: Iterable<string>, quote: (word: string) => string = (w) => `'${w}'`): string | undefined {
  const match = closest(typed, known);
  return match === undefined ? undefined : `did you mean ${quote(match)}?`;
}
