/**
 * The model used when the config names no `model`: loads the one XGBoost JSON weights file and predicts with it.
 * Bundled into the image like any user model.
 */
import { readdir } from 'node:fs/promises';
import { TensorModel, type InitContext, type Tensors } from '@pyml/contract';
import type { XgboostAdapter } from './adapter.ts';
import type { Booster } from './booster.ts';

export default class XgboostJsonModel extends TensorModel {
  private booster?: Booster;

  async init(ctx: InitContext): Promise<void> {
    const files = (await readdir(ctx.weightsDir)).filter((f) => f.endsWith('.json')).sort();
    if (files.length !== 1) throw new Error(`xgboost-json default model: expected one .json weights file, found ${files.join(', ') || 'none'}`);
    this.booster = await ctx.adapter<XgboostAdapter>('xgboost-json').load(files[0]!);
  }

  async predict(inputs: Tensors): Promise<Tensors> {
    if (!this.booster) throw new Error('xgboost-json: predict called before init');
    return this.booster.predict(inputs);
  }
}
