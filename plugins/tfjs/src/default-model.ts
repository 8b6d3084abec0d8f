/**
 * The model code used when a config names no `model`: loads the one TF.js model directory of the weights and
 * passes tensors straight through it.
 */
import { readdir } from 'node:fs/promises';
import { join } from 'node:path';
import { TensorModel, type InitContext, type Tensors } from '@pyml/contract';
import type { TfjsAdapter, TfjsSession } from './adapter.ts';
import { findManifest } from './file-io.ts';

export default class TfjsPassThroughModel extends TensorModel {
  private session?: TfjsSession;

  async init(ctx: InitContext): Promise<void> {
    const dirs = (await readdir(ctx.weightsDir, { withFileTypes: true }))
      .filter((e) => e.isDirectory() && findManifest(join(ctx.weightsDir, e.name), e.name) !== undefined).map((e) => e.name).sort();
    if (dirs.length !== 1) {
      throw new Error(`tfjs default model: expected exactly one TF.js model directory in ${ctx.weightsDir}, found ${dirs.length ? dirs.join(', ') : 'none'}; write a model module to choose`);
    }
    this.session = await ctx.adapter<TfjsAdapter>('tfjs').load(dirs[0]!);
  }

  async predict(inputs: Tensors): Promise<Tensors> {
    if (!this.session) throw new Error('tfjs default model: predict called before init');
    return this.session.run(inputs);
  }

  close(): void {
    this.session?.release();
  }
}
