/**
 * Loads a TF.js model directory (layers or graph) with tfjs-core/-layers/-converter and wraps it as a session over
 * contract tensors. Shared by the build (signature inference, on the CPU backend) and the image's adapter.
 */
import * as tf from '@tensorflow/tfjs-core';
import { loadLayersModel, type LayersModel } from '@tensorflow/tfjs-layers';
import { loadGraphModel, type GraphModel } from '@tensorflow/tfjs-converter';
import type { Signature, Tensor, Tensors } from '@pyml/contract';
import { fileLoadHandler, readModelDirectory, type TfjsFormat } from './file-io.ts';
import { graphSignature } from './graph-signature.ts';
import { FROM_TFJS, specOf, TO_TFJS } from './tfjs-dtype.ts';
import { executeGraph } from './execute-graph.ts';


/** A loaded TF.js model. */
export interface TfjsSession {
  readonly format: TfjsFormat;
  readonly signature: Signature;
  run(inputs: Tensors): Promise<Tensors>;
  release(): void;
}

export function toTf(name: string, t: Tensor, where: string): tf.Tensor {
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

interface KerasLayer { class_name?: string; config?: { name?: string } }
interface KerasTopology { model_config?: KerasTopology; class_name?: string; config?: { layers?: KerasLayer[]; input_layers?: unknown[][]; output_layers?: unknown[][] } | KerasLayer[] }

/**
 * Input/output names as model.json states them. TF.js renames layers it has already seen in the process
 * (`hidden_input_1` on a second load), so names read back from a loaded model are not stable.
 */
function topologyNames(topology: unknown): { inputs: string[]; outputs: string[] } | undefined {
  const t = ((topology as KerasTopology | undefined)?.model_config ?? topology) as KerasTopology | undefined;
  if (!t?.config) return undefined;
  const config = t.config as { layers?: KerasLayer[]; input_layers?: unknown[][]; output_layers?: unknown[][] };
  const layers = Array.isArray(t.config) ? (t.config as KerasLayer[]) : config.layers;
  if (t.class_name === 'Sequential' && layers?.length) {
    const first = layers[0]!;
    const input = first.class_name === 'InputLayer' ? first.config?.name : `${first.config?.name}_input`;
    const output = layers[layers.length - 1]!.config?.name;
    return input && output ? { inputs: [input], outputs: [output] } : undefined;
  }
  if (Array.isArray(config.input_layers) && Array.isArray(config.output_layers)) {
    return { inputs: config.input_layers.map((l) => String(l[0])), outputs: config.output_layers.map((l) => String(l[0])) };
  }
  return undefined;
}

/** Loads the model in `dir`; `display` is how errors name it. */
export async function loadTfjsModel(dir: string, display = dir): Promise<TfjsSession> {
  const { format, artifacts, manifest } = readModelDirectory(dir, display);
  const where = `${display}/${manifest}`;
  if (format === 'layers') {
    let model: LayersModel;
    try {
      model = await loadLayersModel(fileLoadHandler(dir, display));
    } catch (error) {
      throw new Error(`${where}: TF.js cannot load this layers model: ${(error as Error).message}`, { cause: error });
    }
    const names = topologyNames(artifacts.modelTopology);
    const inputNames = names?.inputs.length === model.inputs.length ? names.inputs : layerNames(model.inputs);
    const outputNames = names?.outputs.length === model.outputs.length ? names.outputs : layerNames(model.outputs);
    const signature: Signature = {
      inputs: model.inputs.map((s, i) => specOf(inputNames[i]!, s.shape, s.dtype, where)),
      outputs: model.outputs.map((s, i) => specOf(outputNames[i]!, s.shape, s.dtype, where)),
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
  const signature = await graphSignature(model, artifacts, where);
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
      const list = await executeGraph(model, feeds, names);
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
