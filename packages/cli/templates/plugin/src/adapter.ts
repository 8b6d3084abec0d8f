/**
 * The runtime adapter: bundled by `pyml build` into /opt/pyml/adapters/__PLUGIN__.mjs, loaded once by the
 * image's entrypoint, handed to models as `ctx.adapter<LinearAdapter>('__PLUGIN__')`. It runs inside the image:
 * import nothing of the builder here.
 */
import { readFile } from 'node:fs/promises';
import { isAbsolute } from 'node:path';
import { tensor, type AdapterFactory, type Tensors } from '@pyml/contract';
import { parseLinearModel, type LinearModel } from './linear-format.ts';

export interface LinearSession {
  readonly model: LinearModel;
  run(inputs: Tensors): Tensors;
}

export interface LinearAdapter {
  /** Loads a weights file by base name (`model.linear.json`) or absolute path. */
  load(fileName: string): Promise<LinearSession>;
}

function session(model: LinearModel): LinearSession {
  return {
    model,
    run(inputs) {
      const x = inputs.input;
      if (!x || x.dtype !== 'FP32' || x.shape.length !== 2 || x.shape[1] !== model.inputs) {
        throw new Error(`__PLUGIN__: input "input" must be FP32 [-1, ${model.inputs}]`);
      }
      const rows = x.shape[0]!;
      const data = x.data as Float32Array;
      const out = new Float32Array(rows * model.outputs);
      for (let r = 0; r < rows; r++) {
        for (let o = 0; o < model.outputs; o++) {
          let s = model.bias[o]!;
          for (let i = 0; i < model.inputs; i++) s += data[r * model.inputs + i]! * model.weights[i]![o]!;
          out[r * model.outputs + o] = s;
        }
      }
      return { output: tensor('FP32', [rows, model.outputs], out) };
    },
  };
}

const createAdapter: AdapterFactory<LinearAdapter> = (env) => ({
  async load(fileName) {
    const path = isAbsolute(fileName) ? fileName : env.weightsPath(fileName);
    const model = parseLinearModel(await readFile(path, 'utf8'), fileName);
    env.logger.info(`__PLUGIN__: loaded ${fileName}`, { inputs: model.inputs, outputs: model.outputs });
    return session(model);
  },
});

export default createAdapter;
