/**
 * The ONNX runtime adapter: loaded by the image's entrypoint (bundled, with onnxruntime-node left external and
 * provided by the plugin's dependency layer). Models reach it with `ctx.adapter<OnnxAdapter>('onnx')`.
 */
import * as ort from 'onnxruntime-node';
import { isAbsolute } from 'node:path';
import type { AdapterFactory, Tensors } from '@pyml/contract';
import { toOrtTensor, fromOrtTensor } from './tensor-convert.ts';

export interface OnnxLoadOptions {
  /** Intra-op threads. First set wins: this option, env PYML_ORT_THREADS, onnx({ threads }); else onnxruntime's default. */
  threads?: number;
  graphOptimizationLevel?: 'disabled' | 'basic' | 'extended' | 'all';
  /** Execution providers, in preference order (default: cpu). */
  executionProviders?: string[];
}

/** A loaded ONNX model. */
export interface OnnxSession {
  readonly inputNames: readonly string[];
  readonly outputNames: readonly string[];
  /** Outputs that are tensors (sequence/map outputs such as ZipMap's cannot be fetched by onnxruntime-node). */
  readonly tensorOutputNames: readonly string[];
  /** Runs the model. Without `outputNames`, fetches every tensor output. */
  run(inputs: Tensors, outputNames?: readonly string[]): Promise<Tensors>;
  release(): Promise<void>;
}

export interface OnnxAdapter {
  /** Loads a weights file by its base name (`model.onnx`) or an absolute path. */
  load(fileName: string, options?: OnnxLoadOptions): Promise<OnnxSession>;
}

export interface OnnxAdapterOptions {
  threads?: number;
}

function threadsFromEnv(): number | undefined {
  const raw = process.env.PYML_ORT_THREADS;
  if (raw === undefined || raw === '') return undefined;
  const n = Number(raw);
  if (!Number.isInteger(n) || n < 0) throw new Error(`onnx: PYML_ORT_THREADS must be a non-negative integer, got "${raw}"`);
  return n;
}

class OrtSession implements OnnxSession {
  readonly tensorOutputNames: readonly string[];
  constructor(private readonly session: ort.InferenceSession, private readonly file: string) {
    this.tensorOutputNames = session.outputMetadata.filter((m) => m.isTensor).map((m) => m.name);
  }
  get inputNames() { return this.session.inputNames; }
  get outputNames() { return this.session.outputNames; }

  async run(inputs: Tensors, outputNames: readonly string[] = this.tensorOutputNames): Promise<Tensors> {
    const feeds: Record<string, ort.Tensor> = {};
    for (const name of Object.keys(inputs)) {
      if (!this.session.inputNames.includes(name)) {
        throw new Error(`onnx: ${this.file}: unknown input "${name}"; the model's inputs are ${this.session.inputNames.join(', ')}`);
      }
      feeds[name] = toOrtTensor(ort.Tensor, name, inputs[name]);
    }
    const missing = this.session.inputNames.filter((n) => !(n in inputs));
    if (missing.length) throw new Error(`onnx: ${this.file}: missing input${missing.length > 1 ? 's' : ''} ${missing.map((n) => `"${n}"`).join(', ')}`);
    const results = await this.session.run(feeds, [...outputNames]);
    const out: Tensors = {};
    for (const name of outputNames) out[name] = fromOrtTensor(name, results[name] as ort.Tensor);
    return out;
  }

  release(): Promise<void> {
    return this.session.release();
  }
}

const LOG_LEVELS = ['verbose', 'info', 'warning', 'error', 'fatal'] as const;

/**
 * onnxruntime logs warnings to stderr that are noise in a minimal image (no CA bundle for its telemetry, no
 * /proc/cpuinfo in a sandbox), so the default is 'error'; PYML_ORT_LOG_LEVEL=warning brings them back.
 * It must be set before the first session: onnxruntime reads it once.
 */
function applyLogLevel(): void {
  const level = process.env.PYML_ORT_LOG_LEVEL || 'error';
  if (!(LOG_LEVELS as readonly string[]).includes(level)) {
    throw new Error(`onnx: PYML_ORT_LOG_LEVEL must be one of ${LOG_LEVELS.join(', ')}, got "${level}"`);
  }
  ort.env.logLevel = level as (typeof LOG_LEVELS)[number];
}

/**
 * onnxruntime's Linux build carries Microsoft's telemetry SDK, which creates an empty `mat-debug-<pid>.log` in the
 * temp directory of every process that makes a session, and never removes it (hundreds after a test run; one per
 * model start in production). The SDK reads ORT_DISABLE_TELEMETRY when the first session is made; a value the
 * user set is kept.
 */
function disableTelemetry(): void {
  process.env.ORT_DISABLE_TELEMETRY ??= '1';
}

/** Builds the adapter with fixed defaults (the plugin's `onnx({ threads })` option ends up here). */
export function createOnnxAdapter(defaults: OnnxAdapterOptions = {}): AdapterFactory<OnnxAdapter> {
  return (env) => {
    applyLogLevel();
    disableTelemetry();
    const load = async (fileName: string, options: OnnxLoadOptions = {}): Promise<OnnxSession> => {
      const path = isAbsolute(fileName) ? fileName : env.weightsPath(fileName);
      const threads = options.threads ?? threadsFromEnv() ?? defaults.threads;
      const sessionOptions: ort.InferenceSession.SessionOptions = {
        graphOptimizationLevel: options.graphOptimizationLevel ?? 'all',
        executionProviders: options.executionProviders ?? ['cpu'],
        ...(threads ? { intraOpNumThreads: threads, interOpNumThreads: 1 } : {}),
      };
      let session: ort.InferenceSession;
      try {
        session = await ort.InferenceSession.create(path, sessionOptions);
      } catch (error) {
        throw new Error(`onnx: cannot load ${fileName}: ${(error as Error).message}`, { cause: error });
      }
      env.logger.info(`onnx: loaded ${fileName}`, { inputs: session.inputNames, outputs: session.outputNames, threads: threads ?? 'default' });
      return new OrtSession(session, fileName);
    };
    return { load };
  };
}

const onnxAdapterFactory: AdapterFactory<OnnxAdapter> = createOnnxAdapter();
export default onnxAdapterFactory;
