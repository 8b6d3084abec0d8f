import { status } from '@pyml/runtime/protocol';
import type { Tensors } from '@pyml/contract';
import {
  AdaptiveBatcher, type BatchingOptions, ModelError, type InferRequest, decodeInferRequest, decodeInferResponse, encodeInferRequest, type ServedModel, encodeResponseFor, requestInputs, checkInputs,
} from '@pyml/runtime/protocol';
import type { CallerGone } from './caller-gone.ts';
import { RpcFailure } from './rpc-failure.ts';

/** Sends one encoded ModelInferRequest to the model's process and resolves with its encoded response. */
export type ForwardInfer = (request: Buffer, deadline: Date, merged: boolean, gone?: CallerGone) => Promise<Buffer>;

/** Parameters that only say how to encode the answer: a request carrying others goes to the model as it is. */
const ANSWER_PARAMETERS = new Set(['raw_output', 'binary_data_output']);

/**
 * Adaptive batching in the service, before the second hop: concurrent ModelInfer requests for one model are merged
 * (by the runtime's AdaptiveBatcher, the same policy the image applies when it batches itself) into one call to the
 * model's process, so that process pays for one gRPC exchange and one decode per batch instead of per request; each
 * caller gets its own rows back, encoded by the runtime's own response code, byte for byte what the model would
 * have answered. A request that cannot be merged as it is (undecodable, for another name or version, inputs that do
 * not fit the signature, parameters the model might read) goes to the model untouched, which answers it, and names
 * what is wrong with it, exactly as without batching.
 */
export class FrontBatcher {
  private readonly batcher: AdaptiveBatcher;
  /** Callers whose rows are queued or in a merged call. */
  pending = 0;

  /** `onBatch(rows)`: told of each merged call (for the batch-size histogram). */
  constructor(private readonly model: ServedModel, readonly options: BatchingOptions, private readonly forward: ForwardInfer, private readonly mergedDeadlineMs: number, private readonly onBatch?: (rows: number) => void) {
    this.batcher = new AdaptiveBatcher({
      signature: model.signature,
      // Checked already, in infer(): a request that does not fit goes to the model instead of failing here.
      checkInputs: () => {},
      run: (inputs) => this.runMerged(inputs),
    }, options);
  }

  infer(request: Buffer, deadline: Date, gone?: CallerGone): Promise<Buffer> {
    let req: InferRequest;
    let inputs: Tensors;
    try {
      req = decodeInferRequest(request);
      if (!this.mergeable(req)) return this.forward(request, deadline, false, gone);
      inputs = requestInputs(req, this.model);
      checkInputs(this.model.signature.inputs, inputs);
    } catch {
      // The model names what is wrong with the request, as it does unbatched.
      return this.forward(request, deadline, false, gone);
    }
    this.pending++;
    return new Promise<Buffer>((resolve, reject) => {
      let settled = false;
      const settle = () => {
        settled = true;
        this.pending--;
        clearTimeout(timer);
      };
      // The batch runs on for the others; this caller's deadline is its own.
      const timer = setTimeout(() => {
        if (settled) return;
        settle();
        reject(new RpcFailure(status.DEADLINE_EXCEEDED, `model '${this.model.name}' did not answer within the request's deadline`));
      }, Math.max(0, deadline.getTime() - Date.now()));
      // A caller gone is dropped from waiting; its rows, already queued, run with the others.
      gone?.onGone(() => {
        if (settled) return;
        settle();
        reject(new RpcFailure(status.CANCELLED, 'the caller cancelled the call'));
      });
      this.batcher.predict(inputs).then(
        (outputs) => {
          if (settled) return;
          settle();
          try {
            resolve(encodeResponseFor(req, this.model, outputs));
          } catch (error) {
            reject(error);
          }
        },
        (error: unknown) => {
          if (settled) return;
          settle();
          reject(error);
        },
      );
    });
  }

  private mergeable(req: InferRequest): boolean {
    if (req.modelName !== '' && req.modelName !== this.model.name) return false;
    if (req.modelVersion !== '' && req.modelVersion !== this.model.version) return false;
    if (Object.keys(req.parameters).some((k) => !ANSWER_PARAMETERS.has(k))) return false;
    return req.inputs.every((t) => t.parameters === undefined || Object.keys(t.parameters).length === 0);
  }

  /** One call to the model for a merged batch: raw contents both ways, every output. */
  private async runMerged(inputs: Tensors): Promise<Tensors> {
    this.onBatch?.(inputs[this.model.signature.inputs[0].name].shape[0]);
    const request = encodeInferRequest({
      modelName: this.model.name, raw: true,
      inputs: this.model.signature.inputs.map((s) => ({ name: s.name, tensor: inputs[s.name] })),
    });
    const response = decodeInferResponse(await this.forward(request, new Date(Date.now() + this.mergedDeadlineMs), true));
    const outputs: Tensors = {};
    for (const o of response.outputs) outputs[o.name] = o.tensor;
    for (const spec of this.model.signature.outputs) {
      if (!outputs[spec.name]) throw new ModelError(`model '${this.model.name}' answered a merged batch without its output '${spec.name}'`, { tensor: spec.name });
    }
    return outputs;
  }
}
