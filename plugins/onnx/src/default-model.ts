/**
 * The model code used when a config names no `model`: loads the one .onnx weights file and passes tensors
 * straight through it. Bundled into the image like any user model.
 */
import { readdir } from 'node:fs/promises';
import { TensorModel, type InitContext, type Tensors } from '@pyml/contract';
import type { OnnxAdapter, OnnxSession } from './adapter.ts';

export default class OnnxPassThroughModel extends TensorModel {
  private session?: OnnxSession;

  async init(ctx: InitContext): Promise<void> {
    const files = (await readdir(ctx.weightsDir)).filter((f) => f.toLowerCase().endsWith('.onnx')).sort();
    if (files.length !== 1) {
      throw new Error(`onnx default model: expected exactly one .onnx file in ${ctx.weightsDir}, found ${files.length ? files.join(', ') : 'none'}; write a model module to choose`);
    }
    this.session = await ctx.adapter<OnnxAdapter>('onnx').load(files[0]);
  }

  async predict(inputs: Tensors): Promise<Tensors> {
    if (!this.session) throw new Error('onnx default model: predict called before init');
    return this.session.run(inputs);
  }

  async close(): Promise<void> {
    await this.session?.release();
  }
}
