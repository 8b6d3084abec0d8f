import { tensor, type Tensor, type Tensors } from '@pyml/contract';
import { margins, transform } from './evaluate.ts';
import { readEnsemble, type Ensemble } from './model-format.ts';
import { ensembleSignature } from './signature.ts';

/** A loaded ensemble that predicts over pyml tensors. */
export class Booster {
  constructor(readonly model: Ensemble) {}

  static fromJson(text: string, file: string): Booster {
    let json: unknown;
    try {
      json = JSON.parse(text);
    } catch (error) {
      throw new Error(`xgboost-json: ${file} is not valid JSON: ${(error as Error).message}`);
    }
    return new Booster(readEnsemble(json, file));
  }

  get signature() { return ensembleSignature(this.model); }

  /** `input` FP32 [rows, num_feature] → the outputs named in the signature. */
  predict(inputs: Tensors): Tensors {
    const input = inputs.input as Tensor | undefined;
    if (!input) throw new Error(`xgboost-json: missing input "input" (FP32 [-1, ${this.model.numFeature}])`);
    if (input.dtype !== 'FP32' || input.shape.length !== 2 || input.shape[1] !== this.model.numFeature) {
      throw new Error(`xgboost-json: input "input" must be FP32 [-1, ${this.model.numFeature}], got ${input.dtype} [${input.shape.join(', ')}]`);
    }
    const rows = input.shape[0]!;
    const out = transform(this.model, margins(this.model, input.data as Float32Array, rows), rows);
    const g = this.model.numGroup;
    if (this.model.link === 'softmax') {
      const label = new BigInt64Array(rows);
      for (let r = 0; r < rows; r++) {
        let best = 0;
        for (let k = 1; k < g; k++) if (out[r * g + k]! > out[r * g + best]!) best = k;
        label[r] = BigInt(best);
      }
      return { probabilities: tensor('FP32', [rows, g], Float32Array.from(out)), label: tensor('INT64', [rows], label) };
    }
    if (this.model.link === 'sigmoid') {
      return {
        probability: tensor('FP32', [rows], Float32Array.from(out)),
        label: tensor('INT64', [rows], BigInt64Array.from(out, (p) => (p >= 0.5 ? 1n : 0n))),
      };
    }
    return { prediction: tensor('FP32', [rows], Float32Array.from(out)) };
  }
}
