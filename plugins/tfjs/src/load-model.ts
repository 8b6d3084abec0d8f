/**
 * Loads a TF.js model directory (layers or graph) with tfjs-core/-layers/-converter and wraps it as a session over
 * contract tensors. Shared by the build (signature inference, on the CPU backend) and the image's adapter.
 */
import * as tf from '@tensorflow/tfjs-core';
import { loadLayersModel, type LayersModel } from '@tensorflow/tfjs-layers';
import { loadGraphModel, type GraphModel } from '@tensorflow/tfjs-converter';
import type { Signature, Tensor, Tensors, TensorSpec } from '@pyml/contract';
import { fileLoadHandler, readModelDirectory, type TfjsFormat } from './file-io.ts';
import { FROM_TFJS, TO_TFJS } from './tfjs-dtype.ts';

/** A loaded TF.js model. */
export interface TfjsSession {
  readonly format: TfjsFormat;
  readonly signature: Signature;
  run(inputs: Tensors): Promise<Tensors>;
  release(): void;
}

function specOf(name: string, shape: readonly (number | null | undefined)[] | undefined, dtype: string, where: string): TensorSpec {
  const oip = FROM_TFJS[dtype];
  if (!oip) throw new Error(`${where}: tensor "${name}" has dtype ${dtype}, which has no Open Inference Protocol form`);
  return { name, dtype: oip, shape: shape ? shape.map((d) => (typeof d === 'number' && d >= 0 ? d : -1)) : [-1] };
}

function toTf(name: string, t: Tensor, where: string): tf.Tensor {
  const dtype = TO_TFJS[t.dtype];
  if (!dtype) throw new Error(`${where}: input "${name}": dtype ${t.dtype} is not supported by TF.js (FP32, INT32, BOOL, BYTES)`);
  return tf.tensor(t.data as Float32Array, t.shape, dtype);
}

async function fromTf(name: string, t: tf.Tensor, where: string): Promise<Tensor> {
  const dtype = FROM_TFJS[t.dtype];
  if (!dtype) throw new Error(`${where}: output "${name}" has dtype ${t.dtype}`);
  const data = await t.data();
  return { dtype, shape: [...t.shape], data: dtype === 'BOOL' ? Uint8Array.from(data as Uint8Array) : data } as Tensor;
}

/**
 * Tensor names of a layers model: the producing layer's name (`probabilities` for `probabilities/probabilities`),
 * or the full symbolic name where a layer has several outputs. (Sequential models leave inputNames empty.)
 */
function layerNames(tensors: readonly { name: string }[]): string[] {
  const short = tensors.map((t) => t.name.split('/')[0]!);
  return new Set(short).size === short.length ? short : tensors.map((t) => t.name);
}

/** Loads the model in `dir`; `display` is how errors name it. */
export async function loadTfjsModel(dir: string, display = dir): Promise<TfjsSession> {
  const { format } = readModelDirectory(dir, display);
  const where = `${display}/model.json`;
  if (format === 'layers') {
    let model: LayersModel;
    try {
      model = await loadLayersModel(fileLoadHandler(dir, display));
    } catch (error) {
      throw new Error(`${where}: TF.js cannot load this layers model: ${(error as Error).message}`, { cause: error });
    }
    const signature: Signature = {
      inputs: model.inputs.map((s, i) => specOf(layerNames(model.inputs)[i]!, s.shape, s.dtype, where)),
      outputs: model.outputs.map((s, i) => specOf(layerNames(model.outputs)[i]!, s.shape, s.dtype, where)),
    };
    return {
      format,
      signature,
      async run(inputs) {
        const xs = signature.inputs.map((spec) => {
          const t = inputs[spec.name];
          if (!t) throw new Error(`${where}: missing input "${spec.name}"`);
          return toTf(spec.name, t, where);
        });
        const ys = model.predict(xs.length === 1 ? xs[0]! : xs) as tf.Tensor | tf.Tensor[];
        const list = Array.isArray(ys) ? ys : [ys];
        try {
          const out: Tensors = {};
          for (const [i, spec] of signature.outputs.entries()) out[spec.name] = await fromTf(spec.name, list[i]!, where);
          return out;
        } finally {
          tf.dispose([...xs, ...list]);
        }
      },
      release: () => model.dispose(),
    };
  }
  let model: GraphModel;
  try {
    model = await loadGraphModel(fileLoadHandler(dir, display));
  } catch (error) {
    throw new Error(`${where}: TF.js cannot load this graph model: ${(error as Error).message}`, { cause: error });
  }
  const signature: Signature = {
    inputs: model.inputs.map((t) => specOf(t.name, t.shape, t.dtype, where)),
    outputs: model.outputs.map((t) => specOf(t.name, t.shape, t.dtype, where)),
  };
  return {
    format,
    signature,
    async run(inputs) {
      const feeds: tf.NamedTensorMap = {};
      for (const spec of signature.inputs) {
        const t = inputs[spec.name];
        if (!t) throw new Error(`${where}: missing input "${spec.name}"`);
        feeds[spec.name] = toTf(spec.name, t, where);
      }
      const names = signature.outputs.map((s) => s.name);
      const ys = await model.executeAsync(feeds, names);
      const list = Array.isArray(ys) ? ys : [ys];
      try {
        const out: Tensors = {};
        for (const [i, name] of names.entries()) out[name] = await fromTf(name, list[i]!, where);
        return out;
      } finally {
        tf.dispose([...Object.values(feeds), ...list]);
      }
    },
    release: () => model.dispose(),
  };
}
