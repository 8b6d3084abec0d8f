import type { Logger } from '@pyml/contract';
import type { Predictor } from './batcher.ts';
import { InvalidInputError, ModelError, describeError } from './errors.ts';
import type { ModelHost } from './model-host.ts';
import { HttpFailure } from './oip/http.ts';
import { requestInputs } from './oip/infer-exchange.ts';
import { type JsonResponse, parseJsonBody } from './oip/json.ts';

/**
 * A V2 REST inference in the process that holds the model, whichever way its body came: straight to the image's
 * own HTTP server, or from `pyml serve`'s front through the framed protocol (the body as the client sent it, parsed
 * here once). Same checks, answers and errors either way.
 */

/**
 * The model `name` (and `version`, when given) names, or a 404 naming what is served here. Before init it is 503
 * when `needed`, else undefined (a readiness check answers "not ready").
 */
export function servedModel(host: ModelHost | undefined, name: string, version: string, needed: boolean): ModelHost | undefined {
  if (!host) {
    if (needed) throw new HttpFailure(503, 'model is still initialising');
    return undefined;
  }
  if (name !== host.name || (version && version !== host.version)) {
    throw new HttpFailure(404, `model '${name}'${version ? ` version '${version}'` : ''} is not served here (this is '${host.name}' version '${host.version}')`);
  }
  return host;
}

/** Parses an infer body (nesting refused as met, declared shapes against the limit first) and predicts. */
export async function inferJson(host: ModelHost, predictor: Predictor, body: Uint8Array, maxMessageBytes: number): Promise<JsonResponse> {
  const parsed = parseJsonBody(body, { maxBytes: maxMessageBytes });
  const outputs = parsed.outputs.map((o) => ({ name: o }));
  const result = await predictor.predict(requestInputs({ inputs: parsed.inputs, outputs }, host));
  const names = parsed.outputs.length ? parsed.outputs : host.signature.outputs.map((s) => s.name);
  return { modelName: host.name, modelVersion: host.version, id: parsed.id || undefined, outputs: names.map((n) => ({ name: n, tensor: result[n] })) };
}

/** The answer to a failed REST request: the caller's errors 4xx, the model's and ours 500 (logged). */
export function restFailure(error: unknown, logger: Logger): HttpFailure {
  if (error instanceof HttpFailure) return error;
  if (error instanceof InvalidInputError) return new HttpFailure(400, error.message);
  logger.error('prediction failed', { error: describeError(error) });
  return new HttpFailure(500, error instanceof ModelError ? error.message : `internal error: ${describeError(error)}`);
}
