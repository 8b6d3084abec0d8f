import { type ChildProcess, spawn } from 'node:child_process';
import { mkdir, rm, symlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { PYML_BIN, REPO, pyml, testEnv } from '../helpers/cli.ts';
import { tempDir } from '../helpers/project.ts';

/**
 * Images the serve tests run, built with the real `pyml build`, and `pyml serve` started as a real process.
 * - iris: examples/onnx-iris (onnxruntime).
 * - echo: x FP32 [-1,2] → y = x, rows INT64 [-1] = the row count of the predict call that answered (shows
 *   batching); sleeps max(x[:,1]) ms, so a test can make a request slow, and says so on stderr first.
 * - broken: throws in init.
 */

const ECHO_CONFIG = (name: string) => `import { defineConfig } from '@pyml/core';
export default defineConfig({
  name: '${name}', version: '0.1.0', model: './src/model.ts', kind: 'tensor',
  signature: {
    inputs: [{ name: 'x', dtype: 'FP32', shape: [-1, 2] }],
    outputs: [{ name: 'y', dtype: 'FP32', shape: [-1, 2] }, { name: 'rows', dtype: 'INT64', shape: [-1] }],
  },
  plugins: [],
});
`;

const ECHO_MODEL = `import { TensorModel, type InitContext, type Tensors } from '@pyml/contract';
export default class Echo extends TensorModel {
  async init(_ctx: InitContext): Promise<void> {}
  async predict({ x }: Tensors): Promise<Tensors> {
    const data = x.data as Float32Array;
    const n = x.shape[0];
    let delay = 0;
    for (let r = 0; r < n; r++) delay = Math.max(delay, data[r * 2 + 1]);
    // A slow call says when it has reached the model, so a test can wait for that instead of a fixed time.
    if (delay > 0) console.error(\`echo: holding \${n} rows for \${delay} ms\`);
    if (delay > 0) await new Promise((resolve) => setTimeout(resolve, delay));
    return {
      y: { dtype: 'FP32', shape: [n, 2], data: Float32Array.from(data) },
      rows: { dtype: 'INT64', shape: [n], data: new BigInt64Array(n).fill(BigInt(n)) },
    };
  }
}
`;

const BROKEN_MODEL = `import { TensorModel, type InitContext, type Tensors } from '@pyml/contract';
export default class Broken extends TensorModel {
  async init(_ctx: InitContext): Promise<void> {
    throw new Error('weights are corrupt: checksum mismatch in layer 3');
  }
  async predict(inputs: Tensors): Promise<Tensors> {
    return inputs;
  }
}
`;

/** A dataframe model: score = 2a + n, greeting = "hi " + name. */
const FRAME_CONFIG = `import { defineConfig } from '@pyml/core';
export default defineConfig({
  name: 'frame', version: '0.1.0', model: './src/model.ts', kind: 'dataframe',
  signature: {
    inputs: [{ name: 'a', dtype: 'FP64', shape: [-1] }, { name: 'n', dtype: 'INT64', shape: [-1] }, { name: 'name', dtype: 'BYTES', shape: [-1] }],
    outputs: [{ name: 'score', dtype: 'FP64', shape: [-1] }, { name: 'greeting', dtype: 'BYTES', shape: [-1] }],
  },
  plugins: [],
});
`;

const FRAME_MODEL = `import { DataFrameModel, type InitContext } from '@pyml/contract';
import { type Table, tableFromArrays } from 'apache-arrow';
export default class Frame extends DataFrameModel {
  init(_ctx: InitContext): void {}
  async predict(df: Table): Promise<Table> {
    const a = df.getChild('a')!.toArray() as Float64Array;
    const n = df.getChild('n')!.toArray() as BigInt64Array;
    const names = [...df.getChild('name')!] as string[];
    return tableFromArrays({ score: Float64Array.from(a, (v, i) => v * 2 + Number(n[i])), greeting: names.map((s) => 'hi ' + s) });
  }
}
`;

export type ImageName = 'iris' | 'echo' | 'broken' | 'frame';

/** Builds the named images into a temp dir (OCI layouts; iris also as a tarball). */
export async function buildImages(names: ImageName[]): Promise<{ dir: string; images: Record<ImageName, string>; cleanup(): Promise<void> }> {
  const dir = await tempDir('pyml-serve-test-');
  const images = {} as Record<ImageName, string>;
  for (const name of names) {
    let project = join(REPO, 'examples/onnx-iris');
    if (name !== 'iris') {
      project = join(dir, `${name}-project`);
      await mkdir(join(project, 'src'), { recursive: true });
      await symlink(join(REPO, 'node_modules'), join(project, 'node_modules'));
      await writeFile(join(project, 'pyml.config.ts'), name === 'frame' ? FRAME_CONFIG : ECHO_CONFIG(name));
      await writeFile(join(project, 'src/model.ts'), name === 'echo' ? ECHO_MODEL : name === 'frame' ? FRAME_MODEL : BROKEN_MODEL);
    }
    const out = join(dir, name);
    const r = await pyml(['build', project, '--out', out, ...(name === 'iris' ? ['--tar', `${out}.tar`] : []), '--json']);
    if (r.code !== 0) throw new Error(`pyml build ${name} failed (${r.code}): ${r.stderr}`);
    images[name] = out;
  }
  return { dir, images, cleanup: () => rm(dir, { recursive: true, force: true }) };
}

export interface ReadyLine {
  ready: true;
  pid: number;
  grpc: string;
  http: string;
  socketDir: string;
  models: { name: string; state: string; pid?: number; error?: string; source: string }[];
}

export interface Served {
  child: ChildProcess;
  ready: ReadyLine;
  stderr(): string;
  /** SIGTERM, then the exit code. */
  stop(): Promise<number | null>;
}

const running = new Set<ChildProcess>();
process.on('exit', () => { for (const c of running) c.kill('SIGKILL'); });

/**
 * `pyml serve ARGS --grpc 127.0.0.1:0 --http 127.0.0.1:0 --json`, resolved at its ready line. Models start eagerly
 * (the ready line then has their pids and states) unless ARGS choose `--start`; on-demand.test.ts tests the default.
 */
export function startServe(args: string[], env: Record<string, string> = {}): Promise<Served> {
  const start = args.includes('--start') ? [] : ['--start', 'eager'];
  const child = spawn(process.execPath, [PYML_BIN, 'serve', ...args, ...start, '--grpc', '127.0.0.1:0', '--http', '127.0.0.1:0', '--json'], {
    cwd: REPO, env: { ...process.env, ...testEnv(), ...env }, stdio: ['ignore', 'pipe', 'pipe'],
  });
  running.add(child);
  let err = '';
  child.stderr!.on('data', (c: Buffer) => { err += c.toString(); });
  const exited = new Promise<number | null>((r) => child.on('exit', (code) => { running.delete(child); r(code); }));
  return new Promise((resolve, reject) => {
    let out = '';
    child.stdout!.on('data', (c: Buffer) => {
      out += c.toString();
      const nl = out.indexOf('\n');
      if (nl < 0) return;
      try {
        const ready = JSON.parse(out.slice(0, nl)) as ReadyLine;
        resolve({ child, ready, stderr: () => err, stop: () => { child.kill('SIGTERM'); return exited; } });
      } catch {
        reject(new Error(`serve printed something other than its ready line: ${out}\n${err}`));
      }
    });
    void exited.then((code) => reject(new Error(`pyml serve exited with ${code} before ready:\n${err}`)));
  });
}

// The stock V2 client (proto-loader) the runtime tests use, here over TCP or a Unix socket.
export { v2Client, callError, type Msg, type V2Client } from '../runtime/v2-client.ts';
import type { Msg } from '../runtime/v2-client.ts';

/** HTTP to the service: status and parsed JSON (or text) body. */
export async function http(base: string, path: string, body?: unknown): Promise<{ status: number; body: Msg; text: string }> {
  const res = await fetch(`http://${base}${path}`, body === undefined ? {} : { method: 'POST', body: typeof body === 'string' ? body : JSON.stringify(body), headers: { 'content-type': 'application/json' } });
  const text = await res.text();
  let parsed: Msg = text;
  try { parsed = JSON.parse(text); } catch { /* metrics are text */ }
  return { status: res.status, body: parsed, text };
}

/** An echo request: rows of [value, delayMs]. */
export function echoRequest(rows: [number, number][], model = 'echo'): Msg {
  return { model_name: model, inputs: [{ name: 'x', datatype: 'FP32', shape: [rows.length, 2], contents: { fp32_contents: rows.flat() } }] };
}

export async function waitFor(what: string, check: () => Promise<boolean> | boolean, timeoutMs = 20_000): Promise<number> {
  const start = Date.now();
  for (;;) {
    if (await check()) return Date.now() - start;
    if (Date.now() - start > timeoutMs) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}
