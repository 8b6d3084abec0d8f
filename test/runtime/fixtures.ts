import { type ChildProcess, spawn } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Signature } from '@pyml/contract';
import type { PymlManifest } from '@pyml/image/pyml-format';

/**
 * Lays out temp directories the way an image's /opt/pyml looks (pyml.json, model/model.mjs, adapters/…), and runs
 * the real entrypoint against them as a child process.
 */

export const REPO = resolve(dirname(fileURLToPath(import.meta.url)), '../..');
export const ENTRYPOINT = join(REPO, 'packages/runtime/src/entrypoint.ts');
export const PROTO_DIR = join(REPO, 'proto');
const ARROW_URL = import.meta.resolve('apache-arrow');

/** y = x·scale + 0.1 (scale from the `scale` adapter), m = 3n. Env knobs make it slow, log its calls, or fail. */
const AFFINE_MODEL = `
import { appendFileSync, existsSync } from 'node:fs';
let active = 0;
export default class Affine {
  static contractKind = 'tensor';
  async init(ctx) {
    // Init waits until the test opens the gate (a file appears), so "not ready yet" is not a race.
    while (process.env.PYML_TEST_INIT_GATE && !existsSync(process.env.PYML_TEST_INIT_GATE)) await new Promise((r) => setTimeout(r, 10));
    if (process.env.PYML_TEST_INIT_FAIL) throw new Error('weights are corrupt: ' + ctx.weightsPath('model.bin'));
    this.scale = ctx.adapter('scale').factor;
    ctx.logger.info('affine ready', { scale: this.scale });
  }
  async predict({ x, n }) {
    active++;
    if (process.env.PYML_TEST_ACTIVE_LOG) appendFileSync(process.env.PYML_TEST_ACTIVE_LOG, active + '\\n');
    const delay = Number(process.env.PYML_TEST_DELAY_MS || 0);
    if (delay) await new Promise((r) => setTimeout(r, delay));
    active--;
    if (process.env.PYML_TEST_CALL_LOG) appendFileSync(process.env.PYML_TEST_CALL_LOG, x.shape[0] + '\\n');
    const y = new Float32Array(x.data.length);
    for (let i = 0; i < y.length; i++) y[i] = x.data[i] * this.scale + 0.1;
    const m = new BigInt64Array(n.data.length);
    for (let i = 0; i < m.length; i++) m[i] = n.data[i] * 3n;
    // A planted bug: n = -999 makes the model answer with the wrong dtype.
    if (n.data.includes(-999n)) return { y: { dtype: 'FP64', shape: x.shape, data: Float64Array.from(y) }, m: { dtype: 'INT64', shape: n.shape, data: m } };
    if (n.data.includes(-666n)) throw new Error('model exploded');
    // The model blames the request, as the contract's InvalidInput does (recognised by its flag).
    if (n.data.includes(-777n)) throw Object.assign(new Error('n = -777 is not a valid count'), { invalidInput: true, tensor: 'n' });
    return { y: { dtype: 'FP32', shape: x.shape, data: y }, m: { dtype: 'INT64', shape: n.shape, data: m } };
  }
}
`;
const SCALE_ADAPTER = `export default (env) => ({ factor: 2, weightsDir: env.weightsDir });`;

export const AFFINE_SIGNATURE: Signature = {
  inputs: [{ name: 'x', dtype: 'FP32', shape: [-1, 4] }, { name: 'n', dtype: 'INT64', shape: [-1] }],
  outputs: [{ name: 'y', dtype: 'FP32', shape: [-1, 4] }, { name: 'm', dtype: 'INT64', shape: [-1] }],
};

/** img UINT8 [-1,2,3], tag BYTES [-1] → total FP64 [-1], bright BOOL [-1,2] (row sums > 10), label BYTES [-1]. */
const GRID_MODEL = `
export default class Grid {
  static contractKind = 'tensor';
  init() {}
  async predict({ img, tag }) {
    const rows = img.shape[0];
    const total = new Float64Array(rows);
    const bright = new Uint8Array(rows * 2);
    for (let r = 0; r < rows; r++) {
      for (let i = 0; i < 2; i++) {
        let s = 0;
        for (let j = 0; j < 3; j++) s += img.data[r * 6 + i * 3 + j];
        total[r] += s / 7;
        bright[r * 2 + i] = s > 10 ? 1 : 0;
      }
    }
    return {
      total: { dtype: 'FP64', shape: [rows], data: total },
      bright: { dtype: 'BOOL', shape: [rows, 2], data: bright },
      label: { dtype: 'BYTES', shape: [rows], data: tag.data.map((t) => t.toUpperCase() + '✓') },
    };
  }
}
`;
export const GRID_SIGNATURE: Signature = {
  inputs: [{ name: 'img', dtype: 'UINT8', shape: [-1, 2, 3] }, { name: 'tag', dtype: 'BYTES', shape: [-1] }],
  outputs: [{ name: 'total', dtype: 'FP64', shape: [-1] }, { name: 'bright', dtype: 'BOOL', shape: [-1, 2] }, { name: 'label', dtype: 'BYTES', shape: [-1] }],
};

/** A dataframe model: score = 2a + 1, greeting = "hi " + name. Imports Arrow as a bundled model would. */
const FRAME_MODEL = `
import { tableFromArrays } from ${JSON.stringify(ARROW_URL)};
export default class Frame {
  static contractKind = 'dataframe';
  init() {}
  async predict(df) {
    const a = df.getChild('a').toArray();
    const names = [...df.getChild('name')];
    return tableFromArrays({ score: a.map((v) => v * 2 + 1), greeting: names.map((s) => 'hi ' + s) });
  }
}
`;
export const FRAME_SIGNATURE: Signature = {
  inputs: [{ name: 'a', dtype: 'FP64', shape: [-1] }, { name: 'name', dtype: 'BYTES', shape: [-1] }],
  outputs: [{ name: 'score', dtype: 'FP64', shape: [-1] }, { name: 'greeting', dtype: 'BYTES', shape: [-1] }],
};

export type FixtureModel = 'affine' | 'grid' | 'frame';
const MODELS: Record<FixtureModel, { source: string; signature: Signature; kind: 'tensor' | 'dataframe' }> = {
  affine: { source: AFFINE_MODEL, signature: AFFINE_SIGNATURE, kind: 'tensor' },
  grid: { source: GRID_MODEL, signature: GRID_SIGNATURE, kind: 'tensor' },
  frame: { source: FRAME_MODEL, signature: FRAME_SIGNATURE, kind: 'dataframe' },
};

/** A temp pyml root holding one fixture model. */
export function makeRoot(model: FixtureModel, serving?: PymlManifest['serving']): { root: string; cleanup(): void } {
  // Short paths: Unix socket paths are limited to ~107 bytes.
  const root = mkdtempSync(join(tmpdir(), 'pyml-rt-'));
  const { source, signature, kind } = MODELS[model];
  mkdirSync(join(root, 'model'));
  mkdirSync(join(root, 'adapters'));
  mkdirSync(join(root, 'weights'));
  writeFileSync(join(root, 'model/model.mjs'), source);
  writeFileSync(join(root, 'adapters/scale.mjs'), SCALE_ADAPTER);
  writeFileSync(join(root, 'weights/model.bin'), 'not really weights');
  const manifest: PymlManifest = {
    schemaVersion: 1, name: model, version: '1.2.0', kind, signature,
    model: { entry: 'model/model.mjs' },
    weights: { dir: 'weights', files: [{ name: 'model.bin', size: 18, digest: 'sha256:0' }] },
    adapters: model === 'affine' ? [{ name: 'scale', entry: 'adapters/scale.mjs' }] : [],
    plugins: [], deps: [], parts: [],
    entrypoint: { argv: ['node', '/opt/pyml/runtime/entrypoint.mjs', 'serve'], socket: '/run/pyml/model.sock' },
    ...(serving ? { serving } : {}),
    build: { pyml: '0.1.0', node: process.version, created: '1970-01-01T00:00:00Z', platform: { os: 'linux', architecture: 'amd64' } },
  };
  writeFileSync(join(root, 'pyml.json'), JSON.stringify(manifest, null, 2));
  return { root, cleanup: () => rmSync(root, { recursive: true, force: true }) };
}

/** The entrypoint's `serve` on a fixture whose init waits for `gate` to exist: the server is live while init runs. */
export interface GatedServer {
  fixture: { root: string; cleanup(): void };
  socket: string;
  gate: string;
  child: ChildProcess;
  exited: Promise<number | null>;
  stdout(): string;
}

export async function startGatedServer(model: FixtureModel): Promise<GatedServer> {
  const fixture = makeRoot(model);
  const socket = join(fixture.root, 'model.sock');
  const gate = join(fixture.root, 'init.gate');
  const child = spawn(process.execPath, ['--import', 'tsx', ENTRYPOINT, 'serve', '--socket', socket], {
    cwd: REPO, env: { ...process.env, PYML_ROOT: fixture.root, PYML_TEST_INIT_GATE: gate }, stdio: ['ignore', 'pipe', 'ignore'],
  });
  const exited = new Promise<number | null>((r) => child.on('exit', r));
  let out = '';
  child.stdout!.on('data', (c: Buffer) => { out += c.toString(); });
  while (!existsSync(socket) && child.exitCode === null) await new Promise((r) => setTimeout(r, 20));
  return { fixture, socket, gate, child, exited, stdout: () => out };
}

export interface Run {
  code: number | null;
  stdout: Buffer;
  stderr: string;
}

/** Runs the entrypoint to completion with optional stdin bytes. */
export function runEntrypoint(root: string, args: string[], options: { stdin?: Uint8Array | string; env?: Record<string, string> } = {}): Promise<Run> {
  return new Promise((resolvePromise, reject) => {
    const child = spawn(process.execPath, ['--import', 'tsx', ENTRYPOINT, ...args], {
      cwd: REPO, env: { ...process.env, PYML_ROOT: root, ...options.env }, stdio: ['pipe', 'pipe', 'pipe'],
    });
    const out: Buffer[] = [];
    let err = '';
    child.stdout.on('data', (c: Buffer) => out.push(c));
    child.stderr.on('data', (c: Buffer) => { err += c.toString(); });
    child.on('error', reject);
    child.on('close', (code) => resolvePromise({ code, stdout: Buffer.concat(out), stderr: err }));
    child.stdin.end(options.stdin ?? '');
  });
}

export interface Served {
  child: ChildProcess;
  socket: string;
  ready: { ready: boolean; socket: string; tcp?: string };
  stderr(): string;
  exited: Promise<number | null>;
  stop(): Promise<number | null>;
}

/** Starts `serve` on a socket in the root and waits for its ready line. */
export function startServe(root: string, options: { env?: Record<string, string>; args?: string[] } = {}): Promise<Served> {
  const socket = join(root, 'model.sock');
  const child = spawn(process.execPath, ['--import', 'tsx', ENTRYPOINT, 'serve', '--socket', socket, ...(options.args ?? [])], {
    cwd: REPO, env: { ...process.env, PYML_ROOT: root, ...options.env }, stdio: ['ignore', 'pipe', 'pipe'],
  });
  let err = '';
  child.stderr!.on('data', (c: Buffer) => { err += c.toString(); });
  const exited = new Promise<number | null>((r) => child.on('exit', (code) => r(code)));
  return new Promise((resolvePromise, reject) => {
    let out = '';
    child.stdout!.on('data', (c: Buffer) => {
      out += c.toString();
      const nl = out.indexOf('\n');
      if (nl >= 0) {
        const ready = JSON.parse(out.slice(0, nl));
        resolvePromise({
          child, socket, ready, stderr: () => err, exited,
          stop: () => { child.kill('SIGTERM'); return exited; },
        });
      }
    });
    exited.then((code) => reject(new Error(`serve exited with ${code} before ready:\n${err}`)));
  });
}
