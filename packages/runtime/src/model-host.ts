import { readFileSync } from 'node:fs';
import { isAbsolute, join, relative, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import type { Table } from 'apache-arrow';
import {
  type ContractKind, type DataFrameModel, type InitContext, type Logger, type Signature, type TensorModel, type Tensors,
  blamesInput, contractKindOf,
} from '@pyml/contract';
import { Semaphore } from './concurrency.ts';
import { InitError, InvalidInputError, ModelError, describeError } from './errors.ts';
import { createLogger } from './logger.ts';
import type { PymlManifest } from './manifest.ts';
import { checkInputs, checkOutputs } from './validate.ts';

/** Reads and minimally checks `<root>/pyml.json`. */
export function readManifest(root: string): PymlManifest {
  const path = join(root, 'pyml.json');
  let manifest: PymlManifest;
  try {
    manifest = JSON.parse(readFileSync(path, 'utf8')) as PymlManifest;
  } catch (error) {
    throw new InitError(`cannot read the image manifest ${path}`, { cause: error });
  }
  const missing = (['name', 'version', 'kind', 'signature', 'model'] as const).filter((k) => manifest[k] === undefined);
  if (missing.length) throw new InitError(`${path}: missing ${missing.join(', ')}`);
  if (manifest.kind !== 'tensor' && manifest.kind !== 'dataframe') throw new InitError(`${path}: kind must be 'tensor' or 'dataframe', got ${JSON.stringify(manifest.kind)}`);
  return manifest;
}

/** A path from pyml.json, resolved under the root; anything that climbs out of it is refused. */
function underRoot(root: string, rel: string, what: string): string {
  const full = resolve(root, rel);
  const back = relative(root, full);
  if (back.startsWith('..') || isAbsolute(back)) throw new InitError(`${what} path ${JSON.stringify(rel)} leaves the pyml root ${root}`);
  return full;
}

async function importDefault(path: string, what: string): Promise<unknown> {
  try {
    const mod = (await import(pathToFileURL(path).href)) as { default?: unknown };
    return mod.default;
  } catch (error) {
    throw new InitError(`cannot load ${what} ${path}`, { cause: error });
  }
}

type AnyModel = TensorModel | DataFrameModel;

/**
 * The model inside the image: loads the manifest, the plugins' runtime adapters and the model module, runs `init`
 * once, then answers predictions with the signature enforced on the way in and out. Every front end (gRPC serve,
 * `predict`, `batch`) goes through `predict`/`run`, so online and offline share one code path.
 */
export class ModelHost {
  /** Bounds concurrent model calls when pyml.json sets `serving.maxConcurrency`. */
  private readonly slots?: Semaphore;

  private constructor(
    readonly root: string,
    readonly manifest: PymlManifest,
    readonly logger: Logger,
    private readonly model: AnyModel,
    /** Arrow's tensor conversions, loaded for dataframe models only: a tensor model's server never evaluates Arrow. */
    private readonly arrow?: typeof import('./arrow-tensors.ts'),
  ) {
    const limit = manifest.serving?.maxConcurrency;
    if (limit !== undefined && limit >= 1) this.slots = new Semaphore(limit);
  }

  get kind(): ContractKind { return this.manifest.kind; }
  get signature(): Signature { return this.manifest.signature; }
  get name(): string { return this.manifest.name; }
  get version(): string { return this.manifest.version; }

  /** Loads everything and runs `init`; any failure is an InitError (the entrypoint exits with 3). */
  static async load(options: { root: string; logger?: Logger }): Promise<ModelHost> {
    const root = resolve(options.root);
    const manifest = readManifest(root);
    const logger = options.logger ?? createLogger({ model: manifest.name });
    const weightsDir = underRoot(root, manifest.weights?.dir ?? 'weights', 'weights');
    const env = {
      weightsDir,
      weightsPath: (fileName: string) => underRoot(weightsDir, fileName, 'weights file'),
      signature: manifest.signature,
      logger,
    };

    const adapters = new Map<string, unknown>();
    for (const a of manifest.adapters ?? []) {
      const factory = await importDefault(underRoot(root, a.entry, `adapter '${a.name}'`), `adapter '${a.name}'`);
      if (typeof factory !== 'function') throw new InitError(`adapter '${a.name}' (${a.entry}) must default-export a factory function`);
      try {
        adapters.set(a.name, await factory(env));
      } catch (error) {
        throw new InitError(`adapter '${a.name}' failed to start`, { cause: error });
      }
    }

    const entry = underRoot(root, manifest.model.entry, 'model');
    const ModelClass = await importDefault(entry, 'model module');
    const kind = contractKindOf(ModelClass);
    if (!kind) throw new InitError(`model module ${manifest.model.entry} must default-export a class extending TensorModel or DataFrameModel`);
    if (kind !== manifest.kind) throw new InitError(`model module ${manifest.model.entry} is a ${kind} model, but pyml.json says ${manifest.kind}`);

    const ctx: InitContext = {
      ...env,
      adapter<T>(name: string): T {
        if (!adapters.has(name)) {
          const known = [...adapters.keys()];
          throw new Error(`no runtime adapter '${name}' in this image (${known.length ? `have ${known.join(', ')}` : 'none installed'})`);
        }
        return adapters.get(name) as T;
      },
    };
    let model: AnyModel;
    try {
      model = new (ModelClass as new () => AnyModel)();
      const started = Date.now();
      await model.init(ctx);
      logger.info('model initialised', { ms: Date.now() - started, kind });
    } catch (error) {
      throw new InitError(`model init failed: ${describeError(error)}`, { cause: error });
    }
    return new ModelHost(root, manifest, logger, model, kind === 'dataframe' ? await import('./arrow-tensors.ts') : undefined);
  }

  /** Throws InvalidInputError when the inputs do not fit the signature. */
  checkInputs(inputs: Tensors): void {
    checkInputs(this.signature.inputs, inputs);
  }

  /** Validated inputs → model → validated outputs. */
  async predict(inputs: Tensors): Promise<Tensors> {
    this.checkInputs(inputs);
    return this.run(inputs);
  }

  /** Calls the model on inputs already checked; checks what comes back (a mismatch is a ModelError). */
  run(inputs: Tensors): Promise<Tensors> {
    // Without a concurrency limit, no slot to wait for: one promise hop less per call on the serving path.
    return this.slots ? this.runInSlot(this.slots, inputs) : this.call(inputs);
  }

  private async runInSlot(slots: Semaphore, inputs: Tensors): Promise<Tensors> {
    const release = await slots.acquire();
    try {
      return await this.call(inputs);
    } finally {
      release();
    }
  }

  private async call(inputs: Tensors): Promise<Tensors> {
    let outputs: Tensors;
    if (this.kind === 'tensor') {
      try {
        outputs = await (this.model as TensorModel).predict(inputs);
      } catch (error) {
        throw predictFailure(error);
      }
    } else {
      const { tensorsToTable, columnsToTensors } = this.arrow!;
      const table = tensorsToTable(this.signature.inputs, inputs);
      let result: Table;
      try {
        result = await (this.model as DataFrameModel).predict(table);
      } catch (error) {
        throw predictFailure(error);
      }
      if (!result || typeof (result as Partial<Table>).getChild !== 'function') {
        throw new ModelError(`dataframe model must return an Arrow Table, got ${result === null ? 'null' : typeof result}`);
      }
      if (result.numRows !== table.numRows) {
        throw new ModelError(`dataframe model returned ${result.numRows} rows for ${table.numRows} input rows`);
      }
      outputs = columnsToTensors(this.signature.outputs, result, 'output');
    }
    checkOutputs(this.signature.outputs, outputs);
    return outputs;
  }

  async close(): Promise<void> {
    await this.model.close?.();
  }
}

/** A model that blames the request (contract's InvalidInput, or a plugin error of kind 'invalid') gets INVALID_ARGUMENT. */
function predictFailure(error: unknown): Error {
  if (blamesInput(error)) return new InvalidInputError(error.message, error.tensor);
  return new ModelError(`model predict failed: ${describeError(error)}`, { cause: error });
}
