/**
 * The PyTorch runtime adapter, bundled into the image and loaded by the entrypoint. Models reach it with
 * `ctx.adapter<PytorchAdapter>('pytorch')` and start a Python sidecar that runs their Python model class.
 */
import type { AdapterFactory, Tensors } from '@pyml/contract';
import { Sidecar, SidecarError } from './sidecar.ts';

/** Where the image keeps the interpreter and the `pyml` Python package (python-env.ts lays them out). */
export const IMAGE_PYTHON = '/usr/bin/python3.11';
export const IMAGE_PYTHON_PACKAGE_DIR = '/opt/pyml/python';
export const IMAGE_MODEL_DIR = '/opt/pyml/model';

export interface PythonModelSource {
  /** The model's Python files: path relative to the module root ('model.py', 'pkg/util.py') → source text. */
  files: Record<string, string>;
  /** Module to import ('model'). */
  module: string;
  /** Model class in that module; default: the one pyml.TensorModel subclass it defines. */
  className?: string;
  /** Directory named in tracebacks (default /opt/pyml/model). */
  originDir?: string;
}

export interface PytorchSession {
  /** Runs the Python model's predict; a Python exception rejects with its "Type: message". */
  predict(inputs: Tensors): Promise<Tensors>;
  /** Python, torch versions and the sidecar's pid, from its readiness reply. */
  readonly info: Record<string, unknown>;
  readonly pid: number | undefined;
  readonly restarts: number;
  close(): Promise<void>;
}

export interface PytorchAdapter {
  /** Starts a sidecar with the model and resolves once its `init` has returned. */
  start(model: PythonModelSource): Promise<PytorchSession>;
}

export interface PytorchAdapterOptions {
  python?: string;
  pythonPath?: string[];
  /** torch intra-op threads (PYML_TORCH_THREADS at run time overrides it). */
  threads?: number;
}

export { SidecarError };

export function createPytorchAdapter(defaults: PytorchAdapterOptions = {}): AdapterFactory<PytorchAdapter> {
  return (env) => ({
    async start(model: PythonModelSource): Promise<PytorchSession> {
      // Outside an image (tests, benches) the host's interpreter and this checkout's Python package stand in.
      const python = process.env.PYML_PYTORCH_PYTHON || defaults.python || IMAGE_PYTHON;
      const pythonPath = process.env.PYML_PYTORCH_PYTHONPATH?.split(':').filter(Boolean) ?? defaults.pythonPath ?? [IMAGE_PYTHON_PACKAGE_DIR];
      const threads = process.env.PYML_TORCH_THREADS || (defaults.threads ? String(defaults.threads) : undefined);
      const sidecar = new Sidecar({
        python, pythonPath, logger: env.logger,
        env: threads ? { PYML_TORCH_THREADS: threads } : {},
        init: {
          files: model.files, module: model.module, className: model.className,
          originDir: model.originDir ?? IMAGE_MODEL_DIR, weightsDir: env.weightsDir, signature: env.signature,
        },
      });
      await sidecar.start();
      return {
        predict: (inputs) => sidecar.predict(inputs),
        get info() { return sidecar.info; },
        get pid() { return sidecar.pid; },
        get restarts() { return sidecar.restartCount; },
        close: () => sidecar.stop(),
      };
    },
  });
}

const pytorchAdapterFactory: AdapterFactory<PytorchAdapter> = createPytorchAdapter();
export default pytorchAdapterFactory;
