import { readdir } from 'node:fs/promises';
import { join } from 'node:path';
import { parseCommandArgs } from '../args.ts';
import { didYouMean, EXIT } from '@pyml/errors';
import { BlobStore, decidePrune, diskUsage, listCacheEntries, pymlCacheDir, removeEntry, SharedFiles, type PruneDecision } from '@pyml/image';
import { defaultRootfsCache, processesUsing, sharedFilesDir } from '@pyml/launcher';
import { pulledCacheDir } from '@pyml/registry/cached-pull';
import { formatBytes, printJson, usage } from '../output.ts';

export const help = `Usage: pyml cache [du] [options]
       pyml cache prune [--unused-for DURATION] [--blobs] [--dry-run] [options]

pyml keeps three things in its cache (PYML_CACHE_DIR, default ~/.cache/pyml):
  blobs      the build and pull cache: layers by digest, so an unchanged part is never built or fetched twice
  unpacked   images unpacked to run them (serve, predict, batch), one tree per digest; their files are kept
             once and hard-linked into every tree, so images on the same base share its Node and libraries
  pulled     registry images (and engine images) that serve, predict and batch were given, by digest

'pyml cache du' shows what each takes on disk, each file counted once.
'pyml cache prune' removes unpacked and pulled images, except those a running process uses (a model process,
or 'pyml serve', which keeps its images open) and those used within --unused-for. They come back on their next
use: unpacked again, or pulled again. Blobs are kept unless --blobs is given: they are what makes builds fast.
With --blobs, blobs no build or pull linked into a layout within --unused-for go too (layouts and images keep
their own hard links, so nothing built is lost; the next build of a pruned part is a cold one). Blobs a running
build holds open are kept.

Options:
  --unused-for DURATION  keep what was used within this long: 30m, 12h, 7d (default 0: keep only what is in use)
  --blobs                prune the blob store too
  --dry-run              say what would be removed, remove nothing
  --json                 print one JSON object
  -h, --help             show this help

Exit codes: 0 ok; 1 something could not be removed; 2 usage error.

Examples:
  pyml cache du
  pyml cache prune --unused-for 7d
  pyml cache prune --blobs --unused-for 30d
  pyml cache prune --dry-run --json | jq '.removed[].name'
`;

type Kind = 'unpacked' | 'pulled' | 'blob';

export async function run(args: string[]): Promise<number> {
  const { values, positionals } = parseCommandArgs('cache', {
    args, allowPositionals: true,
    options: { 'unused-for': { type: 'string' }, blobs: { type: 'boolean', default: false }, 'dry-run': { type: 'boolean', default: false }, json: { type: 'boolean', default: false }, help: { type: 'boolean', short: 'h' } },
  });
  if (values.help) { process.stdout.write(help); return EXIT.ok; }
  const [verb = 'du', ...rest] = positionals;
  if (rest.length > 0) throw usage(`pyml cache ${verb} takes no other arguments; got ${rest.join(' ')}`);
  if (verb === 'du') {
    if (values['unused-for'] !== undefined || values['dry-run'] || values.blobs) throw usage('--unused-for, --blobs and --dry-run go with pyml cache prune');
    return showUsage(values.json);
  }
  if (verb === 'prune') return prune(parseDuration(values['unused-for'] ?? '0'), { blobs: values.blobs, dryRun: values['dry-run'], json: values.json });
  throw usage(`unknown cache command '${verb}' (cache commands: du, prune)`, didYouMean(verb, ['du', 'prune']));
}

async function showUsage(json: boolean): Promise<number> {
  const root = pymlCacheDir();
  const rootfs = defaultRootfsCache();
  const pulled = pulledCacheDir();
  const others = (await readdir(root).catch(() => [] as string[])).map((name) => join(root, name)).filter((p) => p !== rootfs && p !== pulled);
  // One set of seen inodes: pulled layouts link the blob store's files, and those are counted once, under blobs.
  const seen = new Set<string>();
  const parts = {
    blobs: { bytes: await diskUsage(others, seen) },
    pulled: { images: (await listCacheEntries(pulled)).filter((e) => !e.temporary).length, bytes: await diskUsage([pulled], seen) },
    unpacked: { images: (await listCacheEntries(rootfs, ['files'])).filter((e) => !e.temporary).length, bytes: await diskUsage([rootfs], seen) },
  };
  const total = parts.blobs.bytes + parts.pulled.bytes + parts.unpacked.bytes;
  if (json) {
    printJson({ ok: true, cacheDir: root, ...parts, totalBytes: total });
    return EXIT.ok;
  }
  process.stdout.write(`cache ${root}\n`
    + `  blobs     ${formatBytes(parts.blobs.bytes).padStart(10)}\n`
    + `  pulled    ${formatBytes(parts.pulled.bytes).padStart(10)}  ${parts.pulled.images} image(s)\n`
    + `  unpacked  ${formatBytes(parts.unpacked.bytes).padStart(10)}  ${parts.unpacked.images} image(s)\n`
    + `  total     ${formatBytes(total).padStart(10)}\n`);
  return EXIT.ok;
}

async function prune(unusedForMs: number, { blobs, dryRun, json }: { blobs: boolean; dryRun: boolean; json: boolean }): Promise<number> {
  const rootfs = defaultRootfsCache();
  const pulled = pulledCacheDir();
  const store = new BlobStore();
  // Half-written blobs of builds that were stopped are garbage whatever the options.
  if (!dryRun) await store.sweepDeadTemps();
  const entries = [
    ...(await listCacheEntries(rootfs, ['files'])).map((entry) => ({ kind: 'unpacked' as Kind, entry })),
    ...(await listCacheEntries(pulled)).map((entry) => ({ kind: 'pulled' as Kind, entry })),
    ...(blobs ? (await listCacheEntries(store.blobsDir)).map((entry) => ({ kind: 'blob' as Kind, entry })) : []),
  ];
  const measured = [rootfs, pulled, ...(blobs ? [store.blobsDir] : [])];
  const inUse = await processesUsing(entries.map((e) => e.entry.path));
  const kindOf = new Map(entries.map((e) => [e.entry.path, e.kind]));
  const decisions = decidePrune(entries.map((e) => e.entry), inUse, unusedForMs);
  const before = dryRun ? 0 : await diskUsage(measured);
  const failures: string[] = [];
  if (!dryRun) {
    for (const d of decisions.filter((x) => x.remove)) {
      await removeEntry(d.entry).catch((error: Error) => failures.push(`${d.entry.path}: ${error.message}`));
    }
  }
  const shared = dryRun ? { files: 0, bytes: 0 } : await new SharedFiles(sharedFilesDir(rootfs)).prune();
  // Index entries of pruned layers would only be misses; dropping them keeps the index honest.
  if (blobs && !dryRun) await store.forgetMissingLayers();
  const freedBytes = dryRun ? 0 : before - (await diskUsage(measured));
  const describe = (d: PruneDecision) => ({ kind: kindOf.get(d.entry.path), name: d.entry.name, path: d.entry.path, ...(d.reason ? { reason: d.reason } : {}) });
  const removed = decisions.filter((d) => d.remove).map(describe);
  const kept = decisions.filter((d) => !d.remove).map(describe);
  if (json) {
    printJson({ ok: failures.length === 0, dryRun, removed, kept, sharedFilesRemoved: shared.files, freedBytes, ...(failures.length ? { failures } : {}) });
  } else {
    const verb = dryRun ? 'would remove' : 'removed';
    for (const r of removed) process.stdout.write(`${verb} ${r.kind} ${r.name}\n`);
    for (const k of kept) process.stdout.write(`kept ${k.kind} ${k.name}: ${k.reason}\n`);
    const images = removed.filter((r) => r.kind !== 'blob').length;
    const blobCount = removed.length - images;
    if (!dryRun) process.stdout.write(`freed ${formatBytes(freedBytes)} (${images} image(s), ${shared.files} shared file(s)${blobs ? `, ${blobCount} blob(s)` : ''})\n`);
    for (const f of failures) process.stderr.write(`error: could not remove ${f}\n`);
  }
  return failures.length ? EXIT.failure : EXIT.ok;
}

/** `30m`, `12h`, `7d`, `90s` or `0` → milliseconds. */
function parseDuration(text: string): number {
  const m = /^(\d+(?:\.\d+)?)(s|m|h|d)?$/.exec(text.trim());
  if (!m || (m[2] === undefined && Number(m[1]) !== 0)) throw usage(`--unused-for must be a duration such as 30m, 12h or 7d (or 0), got '${text}'`);
  const unit = { s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 }[(m[2] ?? 's') as 's' | 'm' | 'h' | 'd'];
  return Number(m[1]) * unit;
}
