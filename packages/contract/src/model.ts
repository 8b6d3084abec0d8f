import type { Table } from 'apache-arrow';
import type { Signature, ContractKind } from './signature.ts';
import type { Tensors } from './tensor.ts';

export interface Logger {
  debug(message: string, fields?: Record<string, unknown>): void;
  info(message: string, fields?: Record<string, unknown>): void;
  warn(message: string, fields?: Record<string, unknown>): void;
  error(message: string, fields?: Record<string, unknown>): void;
}

/** What `init` is given inside the image (or in a test harness). */
export interface InitContext {
  /** Absolute directory holding the weights files, as laid out in the config's `weights`. */
  weightsDir: string;
  /** Absolute path of one weights file by its base name (`model.onnx`). */
  weightsPath(fileName: string): string;
  /** The signature the runtime enforces on every request. */
  signature: Signature;
  logger: Logger;
  /** A framework runtime adapter contributed by a plugin, by plugin name (`onnx`, `tfjs`, ...). */
  adapter<T = unknown>(name: string): T;
}

/** A model over named tensors. Implement `init` and `predict`; default-export the class. */
export abstract class TensorModel {
  static readonly contractKind: ContractKind = 'tensor';
  abstract init(ctx: InitContext): Promise<void> | void;
  abstract predict(inputs: Tensors): Promise<Tensors>;
  /** Optional: release resources when the process drains. */
  close?(): Promise<void> | void;
}

/** A model over an Arrow table, one column per input; returns one column per output, same row count. */
export abstract class DataFrameModel {
  static readonly contractKind: ContractKind = 'dataframe';
  abstract init(ctx: InitContext): Promise<void> | void;
  abstract predict(df: Table): Promise<Table>;
  close?(): Promise<void> | void;
}

export type ModelClass = (abstract new () => TensorModel | DataFrameModel) & { contractKind: ContractKind };

/** Reads the contract kind of a default export without `instanceof`, so bundled copies of this package still match. */
export function contractKindOf(value: unknown): ContractKind | undefined {
  if (typeof value !== 'function') return undefined;
  const kind = (value as { contractKind?: unknown }).contractKind;
  return kind === 'tensor' || kind === 'dataframe' ? kind : undefined;
}

/**
 * Throw from `predict` when the request itself is wrong (a value out of range, an unknown category): the caller
 * gets INVALID_ARGUMENT with this message instead of INTERNAL. Recognised by its `invalidInput` flag, so copies of
 * this class bundled into model code still count.
 */
export class InvalidInput extends Error {
  readonly invalidInput = true;
  constructor(message: string, readonly tensor?: string) {
    super(message);
    this.name = 'InvalidInput';
  }
}

/** Whether an error thrown by a model blames the request (see InvalidInput); plugins may set `kind: 'invalid'`. */
export function blamesInput(error: unknown): error is Error & { tensor?: string } {
  if (!(error instanceof Error)) return false;
  const e = error as Error & { invalidInput?: unknown; kind?: unknown };
  return e.invalidInput === true || e.kind === 'invalid';
}
