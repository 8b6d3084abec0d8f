import type { Signature } from '@pyml/contract';
import type { Ensemble } from './model-format.ts';

/**
 * What a model in this format takes and returns:
 *   input          FP32 [-1, num_feature]   (NaN = missing)
 *   multi:*        probabilities FP32 [-1, num_class], label INT64 [-1]
 *   binary/logistic probability FP32 [-1], label INT64 [-1] (probability >= 0.5)
 *   anything else  prediction FP32 [-1]
 */
export function ensembleSignature(model: Ensemble): Signature {
  const inputs = [{ name: 'input', dtype: 'FP32' as const, shape: [-1, model.numFeature] }];
  if (model.link === 'softmax') {
    return { inputs, outputs: [{ name: 'probabilities', dtype: 'FP32', shape: [-1, model.numGroup] }, { name: 'label', dtype: 'INT64', shape: [-1] }] };
  }
  if (model.link === 'sigmoid') {
    return { inputs, outputs: [{ name: 'probability', dtype: 'FP32', shape: [-1] }, { name: 'label', dtype: 'INT64', shape: [-1] }] };
  }
  return { inputs, outputs: [{ name: 'prediction', dtype: 'FP32', shape: [-1] }] };
}
