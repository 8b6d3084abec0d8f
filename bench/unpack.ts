/**
 * bench/unpack: what running an image costs before its first prediction, and what it leaves on disk. Two images on
 * the same base (examples/onnx-iris, and the same project at another version with other weights) are unpacked
 * into a fresh cache, one after the other, three ways in the same run:
 *   - GNU tar: `tar -xzf` of each layer blob, in order (the physical floor: gunzip and write, no checks);
 *   - unshared: pyml's unpack with every file written into its own tree (as before shared files);
 *   - shared: pyml's unpack as serve, predict and batch run it: files hard-linked from the cache's store, and a
 *     layer met before rebuilt from the store's record of it, without reading its blob.
 *
 *   npx tsx bench/unpack.ts [--runs 3]
 *
 * Prints the median time of each image's unpack and the disk used after both, as ratios to GNU tar.
 */
import { execFileSync } from 'node:child_process';
import { cp, mkdir, readFile, rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { diskUsage, openImage, unpack } from '@pyml/image';
import { sharedFilesDir } from '@pyml/launcher';

const REPO = fileURLToPath(new URL('../', import.meta.url));
const WORK = path.join(REPO, 'bench/.work/unpack');
const { values } = parseArgs({ options: { runs: { type: 'string', default: '3' } } });
const RUNS = Number(values.runs);

/** Builds iris, and iris at another version with its weights perturbed (same base, other top layers). */
async function buildImages(): Promise<[string, string]> {
  const second = path.join(WORK, 'iris-v2-project');
  await rm(second, { recursive: true, force: true });
  await cp(path.join(REPO, 'examples/onnx-iris'), second, { recursive: true, filter: (src) => !src.includes(`${path.sep}.pyml`) });
  await rm(path.join(second, 'node_modules'), { force: true, recursive: true });
  execFileSync('ln', ['-s', path.join(REPO, 'node_modules'), path.join(second, 'node_modules')]);
  const weights = path.join(second, 'weights/model.onnx');
  const bytes = await readFile(weights);
  bytes[bytes.length - 5] ^= 1; // other weights, same size
  await writeFile(weights, bytes);
  const out: string[] = [];
  for (const [project, name] of [[path.join(REPO, 'examples/onnx-iris'), 'iris'], [second, 'iris-v2']] as const) {
    const layout = path.join(WORK, name);
    execFileSync(process.execPath, [path.join(REPO, 'packages/cli/bin/pyml.js'), 'build', project, '--out', layout, '--json'], { env: { ...process.env, PYML_CACHE_DIR: path.join(WORK, 'build-cache') }, stdio: ['ignore', 'ignore', 'inherit'] });
    out.push(layout);
  }
  return out as [string, string];
}

type Mode = 'GNU tar' | 'unshared' | 'shared';

/** Unpacks both images into a fresh cache; the seconds each took and the cache's disk use after both. */
async function unpackBoth(mode: Mode, images: [string, string]): Promise<{ seconds: [number, number]; bytes: number }> {
  const cache = path.join(WORK, 'cache');
  await rm(cache, { recursive: true, force: true });
  await mkdir(cache, { recursive: true });
  const seconds: number[] = [];
  for (const [i, ref] of images.entries()) {
    const target = path.join(cache, `image-${i}`);
    const source = await openImage(ref);
    const start = performance.now();
    if (mode === 'GNU tar') {
      await mkdir(target);
      for (const layer of source.layers) {
        const blob = path.join(ref, 'blobs/sha256', layer.digest.slice('sha256:'.length));
        execFileSync('tar', ['-x', ...(layer.mediaType.endsWith('gzip') ? ['-z'] : []), '-f', blob, '-C', target]);
      }
    } else {
      await unpack(source, target, mode === 'shared' ? { sharedFilesDir: sharedFilesDir(cache) } : {});
    }
    seconds.push((performance.now() - start) / 1000);
    await source.close();
  }
  return { seconds: seconds as [number, number], bytes: await diskUsage([cache]) };
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)];
}

await mkdir(WORK, { recursive: true });
const images = await buildImages();
const results = new Map<Mode, { first: number[]; second: number[]; bytes: number }>();
for (let run = 0; run < RUNS; run++) {
  // Interleaved, so a slow moment of the machine does not land on one mode only.
  for (const mode of ['GNU tar', 'unshared', 'shared'] as Mode[]) {
    const r = await unpackBoth(mode, images);
    const entry = results.get(mode) ?? { first: [], second: [], bytes: 0 };
    entry.first.push(r.seconds[0]);
    entry.second.push(r.seconds[1]);
    entry.bytes = r.bytes;
    results.set(mode, entry);
  }
}
await rm(path.join(WORK, 'cache'), { recursive: true, force: true });

const floor = results.get('GNU tar')!;
const mb = (n: number) => `${(n / 1e6).toFixed(1)} MB`;
console.log(`unpack of two images on one base (iris, then iris at another version), median of ${RUNS} runs`);
console.log(`${'mode'.padEnd(10)} ${'first image'.padStart(18)} ${'second image'.padStart(18)} ${'disk after both'.padStart(22)}`);
for (const [mode, r] of results) {
  const first = median(r.first);
  const second = median(r.second);
  console.log(`${mode.padEnd(10)} ${`${first.toFixed(3)} s x${(first / median(floor.first)).toFixed(2)}`.padStart(18)} ${`${second.toFixed(3)} s x${(second / median(floor.second)).toFixed(2)}`.padStart(18)} ${`${mb(r.bytes)} x${(r.bytes / floor.bytes).toFixed(2)}`.padStart(22)}`);
}
