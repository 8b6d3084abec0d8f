import { type ChildProcess, spawn } from 'node:child_process';
import { availableParallelism } from 'node:os';
import { type EntrypointCommand, type UnpackedImage, entrypointCommand, unpackImage } from '@pyml/launcher';

// The CLI loads the local run through this entry point (the package exports no other light one for it).
export { importLocalBatch } from './bundled-import.ts';

/**
 * Starting the model processes, kept apart from the pool (no Arrow, no DuckDB imported here) so that the CLI can start
 * them first and let their start-up (node, onnxruntime, the model's init) overlap its own loading of DuckDB and Arrow.
 */

const STDERR_KEEP = 64 * 1024;

/**
 * glibc malloc settings for the model processes, which allocate and free the same few large buffers every batch (the
 * Arrow message read from stdin, the model's input and output tensors). By default each one over 128 KiB is a fresh
 * mmap, page-faulted in and unmapped again, and freed heap tops are trimmed: keeping them in the heap instead cut the
 * wide tabular MLP's processes from 2.50 to 2.13 CPU-seconds per 1M rows (page faults 36k → 26k, peak RSS 172 → 161
 * MB); iris unchanged. Set in pyml's environment, the user's own values are passed instead.
 */
const BATCH_MALLOC: Record<string, string> = {
  MALLOC_MMAP_THRESHOLD_: String(32 << 20),
  MALLOC_TRIM_THRESHOLD_: String(64 << 20),
  MALLOC_TOP_PAD_: String(16 << 20),
};

/** One `entrypoint batch` process of the image, watched from the moment it is spawned (its exit is never missed). */
export class ModelProcess {
  readonly child: ChildProcess;
  /** The last 64 KiB of its stderr (its JSON log lines, the error report of a failed batch). */
  stderr = '';
  /** Resolves when the process has exited and its stdio is closed. */
  readonly closed: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;

  constructor(command: EntrypointCommand) {
    this.child = spawn(command.file, command.args, { env: command.env, cwd: command.cwd, stdio: ['pipe', 'pipe', 'pipe'] });
    this.child.stderr!.on('data', (c: Buffer) => {
      this.stderr = (this.stderr + c.toString()).slice(-STDERR_KEEP);
    });
    // EPIPE when the process died: its exit tells why.
    this.child.stdin!.on('error', () => {});
    this.closed = new Promise((resolve) => this.child.on('close', (code, signal) => resolve({ code, signal })));
  }

  get running(): boolean {
    return this.child.exitCode === null && this.child.signalCode === null;
  }

  kill(): void {
    if (this.running) this.child.kill('SIGKILL');
  }
}

/** The image, unpacked, and N of its model processes, started and loading. */
export interface ModelProcesses {
  image: UnpackedImage;
  processes: ModelProcess[];
  /** onnxruntime intra-op threads each process was given (PYML_ORT_THREADS), as the user set it or cores/N. */
  threads: string;
  /** Stops every process now and waits for them (they were not needed: a usage or column error). */
  kill(): Promise<void>;
}

/**
 * Unpacks the image (once per digest) and starts `workers` `entrypoint batch` processes of it. N processes share the
 * cores: each model gets cores/N intra-op threads unless the user chose (PYML_ORT_THREADS is the ONNX plugin's knob,
 * OMP_NUM_THREADS most others'), so N processes do not each start a thread per core.
 */
export async function startModelProcesses(ref: string, workers: number): Promise<ModelProcesses> {
  if (!Number.isSafeInteger(workers) || workers < 1) throw new Error(`--workers must be a positive integer, got ${workers}`);
  const image = await unpackImage(ref);
  const command = entrypointCommand(image, ['batch']);
  const threads = String(Math.max(1, Math.floor(availableParallelism() / workers)));
  for (const knob of ['PYML_ORT_THREADS', 'PYML_TORCH_THREADS', 'OMP_NUM_THREADS']) if (process.env[knob] === undefined) command.env[knob] = threads;
  for (const [knob, value] of Object.entries(BATCH_MALLOC)) command.env[knob] = process.env[knob] ?? value;
  const processes = Array.from({ length: workers }, () => new ModelProcess(command));
  return {
    image, processes, threads: command.env.PYML_ORT_THREADS,
    async kill() {
      for (const p of processes) p.kill();
      await Promise.all(processes.map((p) => p.closed));
    },
  };
}
