import type { TensorSpec } from '@pyml/contract';
import type { ImageDescription } from './describe.ts';

/**
 * What changed between two images, for a human or a CI gate.
 *
 * A signature change is BREAKING when a request or a response that was valid for image A may be rejected or
 * misread with image B:
 *   - an input or an output is removed (a rename is a removal plus an addition);
 *   - an input is added (requests written for A do not send it);
 *   - a dtype changes (input or output);
 *   - a rank changes (number of dimensions);
 *   - a fixed dimension changes to another fixed size;
 *   - an input dimension that was free (-1) becomes fixed (A accepted any size, B accepts one);
 *   - an output dimension that was fixed becomes free (clients may rely on the size);
 *   - the contract kind changes (tensor ↔ dataframe).
 * Compatible: an output is added; an input dimension that was fixed becomes free; the order of entries changes.
 */
export type ChangeStatus = 'added' | 'removed' | 'changed' | 'unchanged';

export interface PartChange {
  part: string;
  name: string;
  status: ChangeStatus;
  a?: { digest: string; size: number; mediaType: string };
  b?: { digest: string; size: number; mediaType: string };
}

export interface SignatureChange {
  side: 'input' | 'output';
  name: string;
  change: 'added' | 'removed' | 'dtype' | 'shape';
  from?: string;
  to?: string;
  breaking: boolean;
  reason: string;
}

export interface DepChange {
  name: string;
  status: ChangeStatus;
  from?: string;
  to?: string;
}

export interface ImageSummary {
  ref: string;
  digest: string;
  name?: string;
  version?: string;
  kind?: string;
  platform: string;
}

export interface ImageDiff {
  a: ImageSummary;
  b: ImageSummary;
  /** Same manifest digest: nothing else to compare. */
  identical: boolean;
  parts: PartChange[];
  kind?: { from?: string; to?: string; breaking: true };
  signature: SignatureChange[];
  deps: DepChange[];
  /** Any change to the signature or the contract kind that is breaking (see above). */
  breaking: boolean;
}

const summary = (d: ImageDescription): ImageSummary => ({
  ref: d.ref, digest: d.digest, name: d.name, version: d.version, kind: d.kind, platform: d.platform,
});

const shapeText = (shape: number[]) => `[${shape.join(', ')}]`;

/** Parts are matched by (part, name): the layers of the same role in both images. */
export function diffParts(a: ImageDescription['parts'], b: ImageDescription['parts']): PartChange[] {
  const key = (p: { part: string; name: string }) => `${p.part}\u0000${p.name}`;
  const inB = new Map(b.map((p) => [key(p), p]));
  const inA = new Set(a.map(key));
  const out: PartChange[] = [];
  const brief = (p: ImageDescription['parts'][number]) => ({ digest: p.digest, size: p.size, mediaType: p.mediaType });
  for (const pa of a) {
    const pb = inB.get(key(pa));
    if (!pb) out.push({ part: pa.part, name: pa.name, status: 'removed', a: brief(pa) });
    else out.push({ part: pa.part, name: pa.name, status: pa.digest === pb.digest ? 'unchanged' : 'changed', a: brief(pa), b: brief(pb) });
  }
  for (const pb of b) if (!inA.has(key(pb))) out.push({ part: pb.part, name: pb.name, status: 'added', b: brief(pb) });
  return out;
}

/** Why one dimension change breaks clients, or undefined when it does not. */
function dimBreak(side: 'input' | 'output', i: number, from: number, to: number): string | undefined {
  if (from === to) return undefined;
  if (from >= 0 && to >= 0) return `dimension ${i} changed from ${from} to ${to}`;
  if (side === 'input' && from < 0) return `dimension ${i} was free (-1) and is now fixed to ${to}`;
  if (side === 'output' && to < 0) return `dimension ${i} was fixed to ${from} and is now free (-1)`;
  return undefined;
}

function diffSpecs(side: 'input' | 'output', a: TensorSpec[], b: TensorSpec[]): SignatureChange[] {
  const out: SignatureChange[] = [];
  const inB = new Map(b.map((t) => [t.name, t]));
  const inA = new Set(a.map((t) => t.name));
  for (const ta of a) {
    const tb = inB.get(ta.name);
    if (!tb) {
      out.push({ side, name: ta.name, change: 'removed', from: `${ta.dtype} ${shapeText(ta.shape)}`, breaking: true, reason: `${side} removed (or renamed)` });
      continue;
    }
    if (ta.dtype !== tb.dtype) {
      out.push({ side, name: ta.name, change: 'dtype', from: ta.dtype, to: tb.dtype, breaking: true, reason: `dtype changed from ${ta.dtype} to ${tb.dtype}` });
    }
    if (shapeText(ta.shape) !== shapeText(tb.shape)) {
      let reason: string | undefined;
      if (ta.shape.length !== tb.shape.length) reason = `rank changed from ${ta.shape.length} to ${tb.shape.length}`;
      else reason = ta.shape.map((d, i) => dimBreak(side, i, d, tb.shape[i]!)).filter(Boolean).join('; ') || undefined;
      out.push({
        side, name: ta.name, change: 'shape', from: shapeText(ta.shape), to: shapeText(tb.shape), breaking: Boolean(reason),
        reason: reason ?? (side === 'input' ? 'a fixed dimension became free (-1): accepts more' : 'a free dimension became fixed: still a valid size'),
      });
    }
  }
  for (const tb of b) {
    if (inA.has(tb.name)) continue;
    const breaking = side === 'input';
    out.push({ side, name: tb.name, change: 'added', to: `${tb.dtype} ${shapeText(tb.shape)}`, breaking,
      reason: breaking ? 'new input: requests written for the old image do not send it' : 'new output: old clients ignore it' });
  }
  return out;
}

export function diffSignature(a: ImageDescription['signature'], b: ImageDescription['signature']): SignatureChange[] {
  const empty = { inputs: [], outputs: [] };
  return [...diffSpecs('input', (a ?? empty).inputs, (b ?? empty).inputs), ...diffSpecs('output', (a ?? empty).outputs, (b ?? empty).outputs)];
}

export function diffDeps(a: ImageDescription['deps'], b: ImageDescription['deps']): DepChange[] {
  const inB = new Map(b.map((d) => [d.name, d]));
  const inA = new Set(a.map((d) => d.name));
  const out: DepChange[] = [];
  const id = (d: { version: string; integrity?: string }) => `${d.version}${d.integrity ? ` ${d.integrity}` : ''}`;
  for (const da of a) {
    const db = inB.get(da.name);
    if (!db) out.push({ name: da.name, status: 'removed', from: da.version });
    else out.push({ name: da.name, status: id(da) === id(db) ? 'unchanged' : 'changed', from: da.version, to: db.version });
  }
  for (const db of b) if (!inA.has(db.name)) out.push({ name: db.name, status: 'added', to: db.version });
  return out;
}

export function diffImages(a: ImageDescription, b: ImageDescription): ImageDiff {
  const signature = diffSignature(a.signature, b.signature);
  const kindChanged = a.kind !== b.kind;
  return {
    a: summary(a),
    b: summary(b),
    identical: a.digest === b.digest,
    parts: diffParts(a.parts, b.parts),
    ...(kindChanged ? { kind: { from: a.kind, to: b.kind, breaking: true as const } } : {}),
    signature,
    deps: diffDeps(a.deps, b.deps),
    breaking: kindChanged || signature.some((c) => c.breaking),
  };
}
