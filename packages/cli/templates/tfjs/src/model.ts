import { TensorModel, type InitContext, type Tensors } from '@pyml/contract';
import type { TfjsAdapter, TfjsSession } from '@pyml/plugin-tfjs';

/**
 * `input` FP32 [N, 3] → `probabilities` FP32 [N, 2].
 * init runs once when the image starts; predict runs per request (or per batch of rows in `pyml batch`).
 */
export default class Model extends TensorModel {
  private session!: TfjsSession;

  async init(ctx: InitContext): Promise<void> {
    this.session = await ctx.adapter<TfjsAdapter>('tfjs').load('model');
  }

  async predict(inputs: Tensors): Promise<Tensors> {
    return this.session.run(inputs);
  }

  close(): void {
    this.session?.release();
  }
}
