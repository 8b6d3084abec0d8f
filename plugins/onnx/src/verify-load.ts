/**
 * Build-time trial load: the streaming reader proves the file is a well-formed ModelProto, but only onnxruntime
 * knows whether it supports every operator and opset. Loading it once at build time turns "fails on the first
 * start in production" into a build error. The load runs in a child process, so the builder's memory does not grow
 * with the weights and a native crash cannot take the build down with it; a passed check is remembered by the
 * file's identity (path, size, mtime, inode), so a rebuild does not load the same weights again, and for a small
 * model by its bytes too, so a copy of it in a new project is not loaded again either.
 *
 * The child loads a skeleton of the model whose big initializers point into the original file (see
 * load-check-skeleton.ts), hard-linked beside it, so onnxruntime maps the weights instead of copying them; with
 * weight prepacking off, nothing touches them. Where that cannot be set up (the cache on another filesystem), or
 * if the skeleton does not load, the child loads the file itself, and that verdict stands.
 */
import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import { link, mkdir, mkdtemp, readFile, realpath, rm, stat, writeFile } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { join } from 'node:path';
import { tmpdir } from 'node:os';
import { planSkeleton, writeSkeleton } from './load-check-skeleton.ts';
import { smallFileDigest } from './small-file-digest.ts';

export interface LoadCheck {
  /** `onnxruntime-node 1.30.0` */
  runtime: string;
}

const require = createRequire(import.meta.url);

function runtimeVersion(): string | undefined {
  try {
    return (require('onnxruntime-node/package.json') as { version: string }).version;
  } catch {
    return undefined;
  }
}

// Loads the model with graph optimisation and weight prepacking off and one thread (the point is operator support,
// not speed: a prepack would read and copy every weight) and reports errors as JSON. CommonJS: onnxruntime-node is
// CommonJS, and importing it from ESM would first scan it for export names.
// ORT_DISABLE_TELEMETRY: see adapter.ts (no mat-debug-PID.log left in the temp directory).
const CHILD = `
process.env.ORT_DISABLE_TELEMETRY ??= '1';
const [ortPath, model] = process.argv.slice(1);
const ort = require(ortPath);
ort.env.logLevel = 'error';
ort.InferenceSession.create(model, {
  graphOptimizationLevel: 'disabled', executionProviders: ['cpu'], intraOpNumThreads: 1, interOpNumThreads: 1,
  extra: { session: { disable_prepacking: '1' } },
}).then(
  (s) => s.release().then(() => process.stdout.write(JSON.stringify({ ok: true }))),
  (e) => process.stdout.write(JSON.stringify({ ok: false, message: String(e && e.message || e) })),
);`;

/** Trial-loads the model; resolves undefined when onnxruntime cannot run on this build machine at all. */
export async function verifyLoads(path: string, displayPath: string, cacheDir?: string): Promise<LoadCheck | undefined> {
  const version = runtimeVersion();
  if (!version) return undefined;
  const runtime = `onnxruntime-node ${version}`;
  const s = await stat(path);
  const key = createHash('sha256').update(JSON.stringify([await realpath(path), s.size, s.mtimeMs, s.ino, version])).digest('hex');
  const markers = cacheDir ? [join(cacheDir, 'onnx-load-checks', key)] : [];
  if (markers[0] && (await readFile(markers[0], 'utf8').catch(() => undefined)) === runtime) return { runtime };
  // The same bytes elsewhere (a copy of the model in another project): a check that passed for them stands.
  const digest = cacheDir ? await smallFileDigest(path) : undefined;
  if (digest) {
    markers.push(join(cacheDir!, 'onnx-load-checks', `sha256-${digest}`));
    if ((await readFile(markers[1]!, 'utf8').catch(() => undefined)) === runtime) {
      await writeFile(markers[0]!, runtime).catch(() => {});
      return { runtime };
    }
  }

  const ortPath = require.resolve('onnxruntime-node');
  const result = (await loadSkeleton(path, ortPath, cacheDir)) ?? (await loadInChild(ortPath, path));
  if (!result) return undefined;
  if (!result.ok) {
    throw new Error(`${displayPath}: ${runtime} cannot load it: ${(result.message ?? '').replace(/\s+/g, ' ').trim()}`);
  }
  if (cacheDir) {
    await mkdir(join(cacheDir, 'onnx-load-checks'), { recursive: true });
    for (const marker of markers) await writeFile(marker, runtime);
  }
  return { runtime };
}

type Verdict = { ok: boolean; message?: string } | undefined;

/** One load of `model` in a child process: its verdict, or undefined when onnxruntime could not run at all. */
function loadInChild(ortPath: string, model: string): Promise<Verdict> {
  return new Promise((resolve) => {
    execFile(process.execPath, ['-e', CHILD, ortPath, model], { maxBuffer: 1 << 20 }, (error, stdout) => {
      try {
        resolve(JSON.parse(stdout) as { ok: boolean; message?: string });
      } catch {
        // No verdict at all: onnxruntime could not even start here (or crashed); the parse already vouched for the file.
        resolve(error ? undefined : { ok: true });
      }
    });
  });
}

/**
 * The load of the model's skeleton, in a fresh directory holding the skeleton and a hard link to the model; its
 * verdict only when it passed (a failure is left to the full load), undefined too when there is no skeleton to load.
 */
async function loadSkeleton(path: string, ortPath: string, cacheDir: string | undefined): Promise<Verdict> {
  const weightsName = 'weights.onnx';
  const plan = await planSkeleton(path, weightsName).catch(() => undefined);
  if (!plan) return undefined;
  const parent = cacheDir ? join(cacheDir, 'onnx-load-checks') : tmpdir();
  let dir: string | undefined;
  try {
    await mkdir(parent, { recursive: true });
    dir = await mkdtemp(join(parent, 'skeleton-'));
    // A hard link, not a symlink: onnxruntime refuses external data whose real path leaves the model's directory.
    await link(path, join(dir, weightsName));
    await writeSkeleton(path, plan, join(dir, 'model.onnx'));
  } catch {
    if (dir) await rm(dir, { recursive: true, force: true });
    return undefined;
  }
  try {
    const verdict = await loadInChild(ortPath, join(dir, 'model.onnx'));
    return verdict?.ok ? verdict : undefined;
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}
