/**
 * The fuzz suite's seeded random source: one seed per run, printed, and taken from PYML_FUZZ_SEED when set, so a
 * failing run is replayed exactly.
 */

export function fuzzSeed(): number {
  const fromEnv = process.env.PYML_FUZZ_SEED;
  if (fromEnv !== undefined && fromEnv !== '') {
    const seed = Number(fromEnv);
    if (!Number.isInteger(seed) || seed < 0 || seed > 0xffff_ffff) throw new Error(`PYML_FUZZ_SEED must be an integer in [0, 2^32), got '${fromEnv}'`);
    return seed;
  }
  return Math.floor(Math.random() * 0x1_0000_0000);
}

/** mulberry32: small, fast, and the same sequence for the same seed everywhere. */
export class Random {
  private state: number;

  constructor(seed: number) {
    this.state = seed >>> 0;
  }

  /** A float in [0, 1). */
  next(): number {
    this.state = (this.state + 0x6d2b79f5) >>> 0;
    let t = this.state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 0x1_0000_0000;
  }

  /** An integer in [0, n). */
  int(n: number): number {
    return Math.floor(this.next() * n);
  }

  pick<T>(items: readonly T[]): T {
    return items[this.int(items.length)];
  }

  bytes(n: number): Buffer {
    const out = Buffer.allocUnsafe(n);
    for (let i = 0; i < n; i++) out[i] = this.int(256);
    return out;
  }
}
