import { open } from 'node:fs/promises';
import { constants as zlibConstants, gzipSync } from 'node:zlib';
import type { PlannedEntry } from './file-entry.ts';

/** Bytes sampled from the start of each file, and in total per layer: enough to see what the data is. */
const SAMPLE_PER_FILE = 1024 * 1024;
const SAMPLE_TOTAL = 8 * 1024 * 1024;
/** Below this saving, gzip costs more (CPU at build, push and every pull) than it gives back. */
const MIN_SAVING = 0.1;

export interface CompressionEstimate {
  compression: 'gzip' | 'none';
  /** Estimated fraction of the layer's file bytes gzip would save. */
  saving: number;
  sampledBytes: number;
}

/**
 * Decides from content alone (so the choice is deterministic) whether gzip pays for itself: gzips the first
 * MiB of each file at the fastest level, up to a total budget, and extrapolates each file's ratio to its full
 * size. Files beyond the budget are assumed to compress like the sampled average.
 */
export async function estimateCompression(entries: PlannedEntry[]): Promise<CompressionEstimate> {
  let budget = SAMPLE_TOTAL;
  let totalBytes = 0;
  let sampledTotal = 0;
  let estimatedCompressed = 0;
  let unsampledBytes = 0;
  let sampledRaw = 0;
  let sampledCompressed = 0;
  for (const entry of entries) {
    if (entry.kind !== 'file' || entry.size === 0) continue;
    totalBytes += entry.size;
    if (budget <= 0) {
      unsampledBytes += entry.size;
      continue;
    }
    const sample = await readSample(entry, Math.min(SAMPLE_PER_FILE, budget));
    if (sample.length === 0) continue;
    budget -= sample.length;
    sampledTotal += sample.length;
    const compressed = gzipSync(sample, { level: zlibConstants.Z_BEST_SPEED }).length;
    sampledRaw += sample.length;
    sampledCompressed += compressed;
    estimatedCompressed += (compressed / sample.length) * entry.size;
  }
  if (unsampledBytes > 0) estimatedCompressed += unsampledBytes * (sampledCompressed / sampledRaw);
  // An empty or all-directories layer: gzip is what every tool expects, and costs nothing.
  if (totalBytes === 0) return { compression: 'gzip', saving: 1, sampledBytes: 0 };
  const saving = 1 - estimatedCompressed / totalBytes;
  return { compression: saving >= MIN_SAVING ? 'gzip' : 'none', saving, sampledBytes: sampledTotal };
}

async function readSample(entry: Extract<PlannedEntry, { kind: 'file' }>, length: number): Promise<Buffer> {
  if ('content' in entry) return entry.content.subarray(0, length);
  const handle = await open(entry.realSource, 'r');
  try {
    const buffer = Buffer.alloc(Math.min(length, entry.size));
    const { bytesRead } = await handle.read(buffer, 0, buffer.length, 0);
    return buffer.subarray(0, bytesRead);
  } finally {
    await handle.close();
  }
}
