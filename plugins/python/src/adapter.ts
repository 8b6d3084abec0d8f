/**
 * The Python runtime adapter, bundled into the image and loaded by the entrypoint. Models reach it with
 * `ctx.adapter<PythonAdapter>('python')` and start Python sidecars that run their Python model class.
 */
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import type { AdapterFactory, Tensors } from '@pyml/contract';
import { Sidecar, SidecarError } from './sidecar.ts';
import { SidecarPool } from './sidecar-pool.ts';

/** Where the image keeps the interpreter and the `pyml` Python package (python-env.ts lays them out). */
export const IMAGE_PYTHON = '/usr/bin/python3.11';
export const IMAGE_PYTHON_PACKAGE_DIR = '/opt/pyml/python';
export const IMAGE_MODEL_DIR = '/opt/pyml/model';
export const IMAGE_DIST_PACKAGES = '/usr/lib/python3/dist-packages';
export const IMAGE_SITE_PACKAGES = '/opt/pyml/site-packages';

export interface PythonModelSource {
  /** The model's Python files: path relative to the module root ('model.py', 'pkg/util.py') → source text. */
  files: Record<string, string>;
  /** Module to import ('model'). */
  module: string;
  /** Model class in that module; default: the one pyml.TensorModel subclass it defines. */
  className?: string;
  /** Directory named in tracebacks (default /opt/pyml/model). */
  originDir?: string;
  /** Sidecar processes serving requests concurrently (default 1). */
  workers?: number;
}

export interface PythonSession {
  /**
   * Runs the Python model's predict; a Python exception rejects with its "Type: message". `frame`: the tensors are
   * a dataframe's 1-D columns, handed to a pyml.DataFrameModel as a pandas DataFrame.
   */
  predict(inputs: Tensors, frame?: boolean): Promise<Tensors>;
  /** Python (and torch) versions, the workers, from the first sidecar's readiness reply. */
  readonly info: Record<string, unknown>;
  /** The first sidecar's pid; `pids` has every worker's. */
  readonly pid: number | undefined;
  readonly pids: (number | undefined)[];
  readonly restarts: number;
  close(): Promise<void>;
}

export interface PythonAdapter {
  /** Starts a sidecar with the model and resolves once its `init` has returned. */
  start(model: PythonModelSource): Promise<PythonSession>;
}

export interface PythonAdapterOptions {
  python?: string;
  pythonPath?: string[];
  /** torch intra-op threads (PYML_TORCH_THREADS at run time overrides it). */
  threads?: number;
}

export { SidecarError };

/** Where the image is: '/' in a container or chroot; the rootfs when run unpacked (PYML_ROOT=<rootfs>/opt/pyml). */
function imageRoot(): string {
  const root = process.env.PYML_ROOT;
  return root && root.endsWith('/opt/pyml') && root !== '/opt/pyml' ? root.slice(0, -'/opt/pyml'.length) : '/';
}

const LOADERS = [
  { loader: 'lib64/ld-linux-x86-64.so.2', triple: 'x86_64-linux-gnu' },
  { loader: 'lib/ld-linux-aarch64.so.1', triple: 'aarch64-linux-gnu' },
];

/**
 * How to start the image's Python. Inside a container or chroot: /usr/bin/python3.11. When `pyml serve` runs the
 * image unpacked (no chroot), through the image's own dynamic loader and libraries, as it runs node, so nothing
 * of the host is used. PYML_PYTORCH_PYTHON / PYML_PYTORCH_PYTHONPATH point at a host Python (tests, benches).
 */
function pythonCommand(defaults: PythonAdapterOptions): { python: string; launcher?: string[]; pythonPath: string[] } {
  if (process.env.PYML_PYTORCH_PYTHON || process.env.PYML_PYTORCH_PYTHONPATH) {
    return {
      python: process.env.PYML_PYTORCH_PYTHON || defaults.python || IMAGE_PYTHON,
      pythonPath: [...(process.env.PYML_PYTORCH_PYTHONPATH ?? '').split(':').filter(Boolean), IMAGE_DIST_PACKAGES],
    };
  }
  const root = imageRoot();
  const python = defaults.python ?? IMAGE_PYTHON;
  // requirements.txt packages (when the image has them) come before Debian's.
  const pythonPath = [...(defaults.pythonPath ?? [IMAGE_PYTHON_PACKAGE_DIR]), IMAGE_SITE_PACKAGES, IMAGE_DIST_PACKAGES];
  if (root === '/') return { python, pythonPath };
  const found = LOADERS.find((l) => existsSync(join(root, l.loader)));
  if (!found) throw new Error(`python: no dynamic loader in the image at ${root}`);
  const libraryPath = [`lib/${found.triple}`, `usr/lib/${found.triple}`, 'lib', 'usr/lib'].map((d) => join(root, d)).filter((d) => existsSync(d)).join(':');
  return {
    python: join(root, python),
    launcher: [join(root, found.loader), '--library-path', libraryPath],
    pythonPath: pythonPath.map((p) => join(root, p)),
  };
}

export function createPythonAdapter(defaults: PythonAdapterOptions = {}): AdapterFactory<PythonAdapter> {
  return (env) => ({
    async start(model: PythonModelSource): Promise<PythonSession> {
      const { python, launcher, pythonPath } = pythonCommand(defaults);
      const threads = process.env.PYML_TORCH_THREADS || (defaults.threads ? String(defaults.threads) : undefined);
      const workers = Math.max(1, model.workers ?? 1);
      const pool = new SidecarPool(Array.from({ length: workers }, () => new Sidecar({
        python, launcher, pythonPath, logger: env.logger,
        env: threads ? { PYML_TORCH_THREADS: threads } : {},
        init: {
          files: model.files, module: model.module, className: model.className,
          originDir: model.originDir ?? IMAGE_MODEL_DIR, weightsDir: env.weightsDir, signature: env.signature,
        },
      })));
      try {
        await pool.start();
      } catch (error) {
        await pool.stop();
        throw error;
      }
      return {
        predict: (inputs, frame = false) => pool.predict(inputs, frame),
        get info() { return pool.info; },
        get pid() { return pool.pids[0]; },
        get pids() { return pool.pids; },
        get restarts() { return pool.restarts; },
        close: () => pool.stop(),
      };
    },
  });
}

const pythonAdapterFactory: AdapterFactory<PythonAdapter> = createPythonAdapter();
export default pythonAdapterFactory;
