/**
 * The TF.js runtime adapter, bundled (with tfjs-core, -layers, -converter and the backends) into the image.
 * Backend: WASM by default (measured faster than the pure-JS CPU backend on serving batch sizes, see README);
 * PYML_TFJS_BACKEND=cpu selects the CPU backend, and a model with string tensors gets it unless told otherwise (the
 * WASM backend cannot run them). The .wasm binaries come from the plugin's dependency layer.
 * Models reach it with `ctx.adapter<TfjsAdapter>('tfjs').load('model')` (a weights directory's name).
 */
import * as tf from '@tensorflow/tfjs-core';
// Named, not a bare side-effect import: under Node the package's entry is its CommonJS build, which its
// `sideEffects` list does not name, so a bundler drops a bare import and the image had no cpu backend.
import { MathBackendCPU } from '@tensorflow/tfjs-backend-cpu';
import { setWasmPaths } from '@tensorflow/tfjs-backend-wasm';
import { existsSync, readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, isAbsolute, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { AdapterFactory } from '@pyml/contract';
import { loadTfjsModel, type TfjsSession } from './load-model.ts';
import { findManifest, MANIFEST } from './file-io.ts';

export type { TfjsSession } from './load-model.ts';

export interface TfjsAdapter {
  /** Loads a model directory by its name in the weights directory (`model`) or an absolute path. */
  load(dirName: string): Promise<TfjsSession>;
  /** The backend in use (`wasm` or `cpu`). */
  readonly backend: string;
}

/**
 * The WASM binaries: in the image next to the adapter (/opt/pyml/adapters → /opt/pyml/node_modules/...), found
 * relative to this module because `pyml predict` runs an unpacked image without chroot; elsewhere (tests, tools),
 * wherever the package is installed.
 */
export function wasmDir(): string {
  const inImage = fileURLToPath(new URL('../node_modules/@tensorflow/tfjs-backend-wasm/dist/', import.meta.url));
  if (existsSync(inImage)) return inImage;
  return `${dirname(createRequire(import.meta.url).resolve('@tensorflow/tfjs-backend-wasm'))}/`;
}
const BACKENDS = ['wasm', 'cpu'];

/** Selects the backend once per process; warnings (the "install tfjs-node" banner) are off in production mode. */
export async function initBackend(backend: string, wasmDir: string): Promise<void> {
  if (!BACKENDS.includes(backend)) throw new Error(`tfjs: PYML_TFJS_BACKEND must be one of ${BACKENDS.join(', ')}, got "${backend}"`);
  if (backend === 'cpu' && !tf.findBackendFactory('cpu')) tf.registerBackend('cpu', () => new MathBackendCPU(), 1);
  if (backend === 'wasm') {
    // One thread: the image's cores belong to the server's concurrency, and threads need a worker script file.
    tf.env().set('WASM_HAS_MULTITHREAD_SUPPORT', false);
    setWasmPaths(wasmDir);
    // The backend's Emscripten glue reads the CommonJS __dirname when it starts; an ESM bundle has none.
    const g = globalThis as { __dirname?: string };
    if (g.__dirname === undefined) g.__dirname = wasmDir;
  }
  if (!(await tf.setBackend(backend))) throw new Error(`tfjs: the ${backend} backend failed to initialise (wasm files in ${wasmDir}?)`);
  await tf.ready();
  // After initialisation, so a backend failure is still reported by TF.js.
  tf.env().set('PROD', true);
}

/**
 * Whether a model directory's graph holds string tensors (inputs, nodes or weights). TF.js's WASM backend fails on
 * them (its kernels find no data for a string tensor: "reading 'backend'" in Reshape, seen with VS Code's language
 * detection model), so such a model runs on the CPU backend unless PYML_TFJS_BACKEND says otherwise.
 */
function holdsStrings(dir: string): boolean {
  const text = readFileSync(join(dir, findManifest(dir) ?? MANIFEST), 'utf8');
  return /"DT_STRING"|"dtype"\s*:\s*"string"/.test(text);
}

const tfjsAdapterFactory: AdapterFactory<TfjsAdapter> = async (env) => {
  const chosen = process.env.PYML_TFJS_BACKEND;
  const wasmFiles = process.env.PYML_TFJS_WASM_DIR || wasmDir();
  // A backend named by the user starts now (a wrong name fails the start); else the first model loaded picks it.
  let backend = chosen;
  if (chosen) await initBackend(chosen, wasmFiles);
  return {
    get backend() {
      return backend ?? 'wasm';
    },
    async load(dirName: string) {
      const dir = isAbsolute(dirName) ? dirName : env.weightsPath(dirName);
      const strings = holdsStrings(dir);
      if (backend === undefined) {
        backend = strings ? 'cpu' : 'wasm';
        await initBackend(backend, wasmFiles);
        if (strings) env.logger.info(`tfjs: ${dirName} holds string tensors, which the WASM backend cannot run: the CPU backend serves it`);
      } else if (strings && backend === 'wasm') {
        throw new Error(`tfjs: ${dirName} holds string tensors, which the WASM backend cannot run, and another model of this image already started on it: set PYML_TFJS_BACKEND=cpu`);
      }
      const session = await loadTfjsModel(dir, dirName);
      env.logger.info(`tfjs: loaded ${dirName}`, { format: session.format, backend, inputs: session.signature.inputs.map((s) => s.name), outputs: session.signature.outputs.map((s) => s.name) });
      return session;
    },
  };
};
export default tfjsAdapterFactory;
