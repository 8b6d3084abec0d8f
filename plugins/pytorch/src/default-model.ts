/**
 * The model code of a PyTorch project: a TensorModel that runs the user's Python model class in the sidecar.
 * The Python sources are inlined at build time (esbuild `define`, see index.ts), so they travel in the image's
 * model-code layer and a change to them rebuilds that small layer only.
 */
import { TensorModel, type InitContext, type Tensors } from '@pyml/contract';
import type { PythonModelSource, PytorchAdapter, PytorchSession } from './adapter.ts';

declare const __PYML_PYTORCH_MODEL__: string | undefined;

export default class PytorchSidecarModel extends TensorModel {
  private session?: PytorchSession;

  async init(ctx: InitContext): Promise<void> {
    if (typeof __PYML_PYTORCH_MODEL__ === 'undefined') {
      throw new Error('pytorch default model: no Python model was inlined at build time (pytorch({ model: "./model.py" }) in pyml.config.ts)');
    }
    const source = JSON.parse(__PYML_PYTORCH_MODEL__) as PythonModelSource;
    this.session = await ctx.adapter<PytorchAdapter>('pytorch').start(source);
  }

  async predict(inputs: Tensors): Promise<Tensors> {
    if (!this.session) throw new Error('pytorch default model: predict called before init');
    return this.session.predict(inputs);
  }

  async close(): Promise<void> {
    await this.session?.close();
  }
}
