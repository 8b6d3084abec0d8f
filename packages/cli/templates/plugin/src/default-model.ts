/** The model used when the config names none: serves the one .linear.json weights file as it is. */
import { readdir } from 'node:fs/promises';
import { TensorModel, type InitContext, type Tensors } from '@pyml/contract';
import type { LinearAdapter, LinearSession } from './adapter.ts';

export default class LinearDefaultModel extends TensorModel {
  private session?: LinearSession;

  async init(ctx: InitContext): Promise<void> {
    const files = (await readdir(ctx.weightsDir)).filter((f) => f.endsWith('.linear.json'));
    if (files.length !== 1) throw new Error(`__PLUGIN__: expected one .linear.json weights file, found ${files.join(', ') || 'none'}`);
    this.session = await ctx.adapter<LinearAdapter>('__PLUGIN__').load(files[0]!);
  }

  async predict(inputs: Tensors): Promise<Tensors> {
    if (!this.session) throw new Error('__PLUGIN__: predict before init');
    return this.session.run(inputs);
  }
}
