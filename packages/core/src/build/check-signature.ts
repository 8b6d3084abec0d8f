import type { Signature, TensorSpec } from '@pyml/contract';
import { ConfigError } from '../errors.ts';

const fmt = (shape: number[]) => `[${shape.join(', ')}]`;

/**
 * Checks a signature declared in the config against the one the weights carry. The declaration may narrow a free
 * dimension (-1) to a size; anything else that differs is a contradiction, reported per tensor.
 */
export function checkDeclaredSignature(declared: Signature, inferred: Signature, configFile: string, weightsFile: string): void {
  const problems: string[] = [];
  for (const side of ['inputs', 'outputs'] as const) {
    const fromModel = new Map(inferred[side].map((t) => [t.name, t]));
    declared[side].forEach((d, i) => {
      const where = `signature.${side}[${i}] '${d.name}'`;
      const m = fromModel.get(d.name);
      if (!m) {
        problems.push(`${where}: the model has no ${side === 'inputs' ? 'input' : 'output'} of that name (it has ${[...fromModel.keys()].map((n) => `'${n}'`).join(', ')})`);
        return;
      }
      fromModel.delete(d.name);
      problems.push(...specProblems(where, d, m));
    });
    if (side === 'inputs') {
      for (const missing of fromModel.keys()) problems.push(`signature.inputs: the model needs input '${missing}', which the declared signature leaves out`);
    }
  }
  if (problems.length) {
    throw new ConfigError(`${configFile}: the declared signature contradicts ${weightsFile}:\n  ${problems.join('\n  ')}`,
      'fix the declaration, or remove `signature` to use the one the model carries');
  }
}

function specProblems(where: string, declared: TensorSpec, model: TensorSpec): string[] {
  const out: string[] = [];
  if (declared.dtype !== model.dtype) out.push(`${where}: dtype ${declared.dtype}, but the model says ${model.dtype}`);
  if (declared.shape.length !== model.shape.length) {
    out.push(`${where}: shape ${fmt(declared.shape)} has rank ${declared.shape.length}, but the model's ${fmt(model.shape)} has rank ${model.shape.length}`);
  } else {
    declared.shape.forEach((dim, k) => {
      const m = model.shape[k]!;
      if (m !== -1 && dim !== m) out.push(`${where}: dimension ${k} is ${dim}, but the model fixes it to ${m} (shape ${fmt(model.shape)})`);
    });
  }
  return out;
}
