import type { Signature, Tensors } from '@pyml/contract';
import { InvalidInputError } from '../errors.ts';
import { type InferRequest, type NamedTensor, encodeInferResponse } from './codec.ts';

/**
 * One ModelInfer exchange, from a decoded request to the response's bytes, around the model's predict. The image's
 * server and `pyml serve`'s batching front share it, so a batched answer is byte for byte what the model would
 * have sent.
 */

/** The model as a response names it. */
export interface ServedModel {
  readonly name: string;
  readonly version: string;
  readonly signature: Signature;
}

/** The request's input tensors by name; an input given twice or an unknown requested output is the caller's error. */
export function requestInputs(req: Pick<InferRequest, 'inputs' | 'outputs'>, model: ServedModel): Tensors {
  const inputs: Tensors = {};
  for (const t of req.inputs) {
    if (Object.hasOwn(inputs, t.name)) throw new InvalidInputError(`input '${t.name}' is given twice`, t.name);
    inputs[t.name] = t.tensor;
  }
  for (const { name } of req.outputs) {
    if (!model.signature.outputs.some((s) => s.name === name)) {
      throw new InvalidInputError(`unknown requested output '${name}'; the model returns ${model.signature.outputs.map((s) => `'${s.name}'`).join(', ')}`, name);
    }
  }
  return inputs;
}

/** The response to `req`: the outputs it asked for (all, in signature order, by default), raw or typed as it asked. */
export function encodeResponseFor(req: InferRequest, model: ServedModel, outputs: Tensors): Buffer {
  const names = req.outputs.length ? req.outputs.map((o) => o.name) : model.signature.outputs.map((s) => s.name);
  const named: NamedTensor[] = names.map((name) => ({ name, tensor: outputs[name] }));
  // Raw answers raw; the `raw_output` (or Triton-style `binary_data_output`) parameter overrides.
  const raw = flag(req.parameters.raw_output) ?? flag(req.parameters.binary_data_output) ?? req.raw;
  return encodeInferResponse({ modelName: model.name, modelVersion: model.version, id: req.id, outputs: named, raw });
}

/** Parses `raw_output`-style parameters: bool, or the strings/ints clients put there. */
function flag(value: unknown): boolean | undefined {
  if (value === undefined) return undefined;
  if (typeof value === 'string') return value === 'true' || value === '1';
  return Boolean(value);
}
