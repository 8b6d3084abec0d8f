/**
 * The model code of a Python tensor model: a TensorModel that runs the user's Python model class in the sidecars.
 * The Python sources are inlined at build time (esbuild `define`, see index.ts), so they travel in the image's
 * model-code layer and a change to them rebuilds that small layer only.
 */
import { TensorModel, type InitContext, type Tensors } from '@pyml/contract';
import { startPythonModel } from './start-python-model.ts';
import type { PythonSession } from './adapter.ts';

export default class PythonSidecarModel extends TensorModel {
  private session?: PythonSession;

  async init(ctx: InitContext): Promise<void> {
    this.session = await startPythonModel(ctx);
  }

  async predict(inputs: Tensors): Promise<Tensors> {
    if (!this.session) throw new Error('python model: predict called before init');
    return this.session.predict(inputs);
  }

  async close(): Promise<void> {
    await this.session?.close();
  }
}
