import { type Tensor, type Tensors, type TensorSpec, elementCount, typedArrayFor } from '@pyml/contract';
import { InvalidInputError, ModelError } from './errors.ts';

/** `[-1, 4]`, the way shapes read in every error message. */
export function formatShape(shape: readonly number[]): string {
  return `[${shape.join(', ')}]`;
}

/**
 * Why `t` does not fit `spec`, or undefined when it does: dtype, container, rank, fixed dims (-1 is free), and the
 * data length against the shape.
 */
export function mismatch(spec: TensorSpec, t: Tensor): string | undefined {
  if (t === null || typeof t !== 'object') return `expected a tensor, got ${t === null ? 'null' : typeof t}`;
  if (t.dtype !== spec.dtype) return `expected dtype ${spec.dtype}, got ${String(t.dtype)}`;
  if (!Array.isArray(t.shape) || t.shape.some((d) => !Number.isSafeInteger(d) || d < 0)) {
    return `shape must be a list of non-negative integers, got ${JSON.stringify(t.shape)}`;
  }
  if (t.shape.length !== spec.shape.length) {
    return `expected rank ${spec.shape.length} (shape ${formatShape(spec.shape)}), got shape ${formatShape(t.shape)}`;
  }
  for (let i = 0; i < spec.shape.length; i++) {
    const want = spec.shape[i];
    if (want !== -1 && t.shape[i] !== want) {
      return `expected shape ${formatShape(spec.shape)}, got ${formatShape(t.shape)} (dimension ${i} must be ${want})`;
    }
  }
  const Ctor = typedArrayFor(spec.dtype);
  const rightContainer = Ctor ? t.data instanceof Ctor : Array.isArray(t.data);
  if (!rightContainer) {
    return `${spec.dtype} data must be ${Ctor ? Ctor.name : 'an array of strings'}, got ${t.data?.constructor?.name ?? typeof t.data}`;
  }
  const expected = elementCount(t.shape);
  if (t.data.length !== expected) return `shape ${formatShape(t.shape)} needs ${expected} elements, got ${t.data.length}`;
  return undefined;
}

/** Checks request tensors against the signature's inputs. Throws InvalidInputError naming the tensor. */
export function checkInputs(specs: readonly TensorSpec[], inputs: Tensors): void {
  for (const name of Object.keys(inputs)) {
    if (!specs.some((s) => s.name === name)) {
      throw new InvalidInputError(`unknown input '${name}'; the model takes ${specs.map((s) => `'${s.name}'`).join(', ')}`, name);
    }
  }
  for (const spec of specs) {
    const t = inputs[spec.name];
    if (t === undefined) throw new InvalidInputError(`missing input '${spec.name}' (${spec.dtype} ${formatShape(spec.shape)})`, spec.name);
    const why = mismatch(spec, t);
    if (why) throw new InvalidInputError(`input '${spec.name}': ${why}`, spec.name);
  }
}

/** Checks what the model returned against the signature's outputs. Throws ModelError: a model bug, not the caller's. */
export function checkOutputs(specs: readonly TensorSpec[], outputs: Tensors): void {
  if (outputs === null || typeof outputs !== 'object') throw new ModelError(`model returned ${String(outputs)} instead of a record of output tensors`);
  for (const name of Object.keys(outputs)) {
    if (!specs.some((s) => s.name === name)) {
      throw new ModelError(`model returned output '${name}', which its signature does not declare`, { tensor: name });
    }
  }
  for (const spec of specs) {
    const t = outputs[spec.name];
    if (t === undefined) throw new ModelError(`model returned no output '${spec.name}' (${spec.dtype} ${formatShape(spec.shape)})`, { tensor: spec.name });
    const why = mismatch(spec, t);
    if (why) throw new ModelError(`model output '${spec.name}': ${why}`, { tensor: spec.name });
  }
}
