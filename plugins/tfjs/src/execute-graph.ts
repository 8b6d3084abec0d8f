import type * as tf from '@tensorflow/tfjs-core';
import type { GraphModel } from '@tensorflow/tfjs-converter';

/** Runs a graph model: execute() for plain graphs; graphs with control flow or dynamic shapes need executeAsync(). */
export async function executeGraph(model: GraphModel, feeds: tf.NamedTensorMap, names: string[]): Promise<tf.Tensor[]> {
  let ys: tf.Tensor | tf.Tensor[];
  try {
    ys = model.execute(feeds, names);
  } catch (error) {
    if (!/executeAsync/.test((error as Error).message)) throw error;
    ys = await model.executeAsync(feeds, names);
  }
  return Array.isArray(ys) ? ys : [ys];
}
