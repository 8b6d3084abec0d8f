import { TensorModel, type InitContext, type Tensors } from '@pyml/contract';
import type { Booster, XgboostAdapter } from 'pyml-plugin-xgboost-json';

/** Iris species from a gradient-boosted tree ensemble: `input` FP32 [N,4] → `probabilities` FP32 [N,3], `label` INT64 [N]. */
export default class IrisTrees extends TensorModel {
  private booster!: Booster;

  async init(ctx: InitContext): Promise<void> {
    this.booster = await ctx.adapter<XgboostAdapter>('xgboost-json').load('model.json');
  }

  async predict(inputs: Tensors): Promise<Tensors> {
    return this.booster.predict(inputs);
  }
}
