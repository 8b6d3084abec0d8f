import { TensorModel, type InitContext, type Tensors } from '@pyml/contract';
import type { OnnxAdapter, OnnxSession } from '@pyml/plugin-onnx';

/**
 * `input` FP32 [N, 3] → `probabilities` FP32 [N, 2] and `label` INT64 [N].
 * init runs once when the image starts; predict runs per request (or per batch of rows in `pyml batch`).
 */
export default class Model extends TensorModel {
  private session!: OnnxSession;

  async init(ctx: InitContext): Promise<void> {
    this.session = await ctx.adapter<OnnxAdapter>('onnx').load('model.onnx');
    ctx.logger.info('model loaded', { inputs: this.session.inputNames });
  }

  async predict(inputs: Tensors): Promise<Tensors> {
    // Pre- or post-processing goes here; the runtime has already checked `inputs` against the signature.
    return this.session.run(inputs);
  }
}
