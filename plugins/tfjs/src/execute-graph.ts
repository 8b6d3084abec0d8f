import * as tf from '@tensorflow/tfjs-core';
import type { GraphModel } from '@tensorflow/tfjs-converter';

/**
 * TF.js 4.22's executor frees a tensor of some control-flow graphs while a later node still needs it (VS Code's
 * language detection: "Cannot read properties of undefined (reading 'backend')" in Reshape). With its own
 * KEEP_INTERMEDIATE_TENSORS flag it holds a reference to each intermediate until the next execution starts, which
 * keeps that tensor alive: memory stays bounded by one execution's intermediates. Turned on for the process the
 * first time an executeAsync fails so, and that call retried once.
 */
let keepingIntermediates = false;

function isEarlyDisposal(error: unknown): boolean {
  return error instanceof TypeError && /reading 'backend'/.test(error.message);
}

/**
 * The executeAsync call each model is running: one at a time per model, because the executor keeps per-run state
 * (its intermediate tensors, disposed when the next run starts), so concurrent calls of a control-flow graph broke
 * each other's tensors.
 */
const running = new WeakMap<GraphModel, Promise<unknown>>();

function executeAsyncInTurn(model: GraphModel, feeds: tf.NamedTensorMap, names: string[]): Promise<tf.Tensor | tf.Tensor[]> {
  const run = (running.get(model) ?? Promise.resolve()).catch(() => undefined).then(() => executeAsyncOnce(model, feeds, names));
  running.set(model, run);
  return run;
}

async function executeAsyncOnce(model: GraphModel, feeds: tf.NamedTensorMap, names: string[]): Promise<tf.Tensor | tf.Tensor[]> {
  try {
    return await model.executeAsync(feeds, names);
  } catch (error) {
    if (keepingIntermediates || !isEarlyDisposal(error)) throw error;
    keepingIntermediates = true;
    tf.env().set('KEEP_INTERMEDIATE_TENSORS', true);
    return model.executeAsync(feeds, names);
  }
}

/** Runs a graph model: execute() for plain graphs; graphs with control flow or dynamic shapes need executeAsync(). */
export async function executeGraph(model: GraphModel, feeds: tf.NamedTensorMap, names: string[]): Promise<tf.Tensor[]> {
  let ys: tf.Tensor | tf.Tensor[];
  if (needsAsync.has(model)) ys = await executeAsyncInTurn(model, feeds, names);
  else {
    try {
      ys = model.execute(feeds, names);
    } catch (error) {
      if (!/executeAsync/.test((error as Error).message)) throw error;
      // Not tried again: execute() starts by disposing the previous run's kept tensors, an executeAsync's in flight.
      needsAsync.add(model);
      ys = await executeAsyncInTurn(model, feeds, names);
    }
  }
  return Array.isArray(ys) ? ys : [ys];
}

/** Models whose graph has control flow or dynamic shapes: execute() refused them once. */
const needsAsync = new WeakSet<GraphModel>();
