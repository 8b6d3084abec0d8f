import { TensorModel, type InitContext, type Tensors } from '@pyml/contract';
import type { OnnxAdapter, OnnxSession } from '@pyml/plugin-onnx';

/** Iris species classifier: `input` FP32 [N,4] → `probabilities` FP32 [N,3] and `label` INT64 [N]. */
export default class Iris extends TensorModel {
  private session!: OnnxSession;

  async init(ctx: InitContext): Promise<void> {
    this.session = await ctx.adapter<OnnxAdapter>('onnx').load('model.onnx');
  }

  async predict(inputs: Tensors): Promise<Tensors> {
    return this.session.run(inputs);
  }
}
