import type { IncomingMessage, ServerResponse } from 'node:http';
import { HttpFailure, readBody, sendJson } from '@pyml/runtime/protocol';
import type { ModelRepository } from './repository.ts';

const LOAD_PATH = /^\/v2\/repository\/models\/([^/]+)\/(load|unload)$/;

/**
 * The REST half of the model repository extension (KServe's and Triton's): `POST /v2/repository/index` (body
 * optional: `{"ready": true}` lists only versions taking calls) answers `[{name, version, state, reason}]`;
 * `POST /v2/repository/models/NAME/load` and `.../unload` answer `{}` once the change is made (an unloaded
 * version stops by itself once its calls in flight end). Returns false for a path that is not the extension's.
 */
export async function serveRepositoryRoute(repository: ModelRepository | undefined, req: IncomingMessage, res: ServerResponse, path: string, limits: { maxBytes: number; deadline: number }): Promise<boolean> {
  const load = LOAD_PATH.exec(path);
  if (path !== '/v2/repository/index' && !load) return false;
  if (req.method !== 'POST') throw new HttpFailure(405, `${path} takes POST`);
  if (!repository) throw new HttpFailure(404, `this service has no model repository (start pyml serve with --repository DIR): ${path}`);
  const body = await readBody(req, { maxBytes: Math.min(limits.maxBytes, 64 * 1024), deadline: limits.deadline, idleMs: 5_000, sizeSetting: 'the repository request limit of 64 KiB', deadlineSetting: '--deadline-ms' });
  let request: Record<string, unknown> = {};
  if (body.length > 0) {
    try {
      request = JSON.parse(body.toString('utf8')) as Record<string, unknown>;
    } catch (error) {
      throw new HttpFailure(400, `the request body is not JSON: ${(error as Error).message}`);
    }
    if (typeof request !== 'object' || request === null || Array.isArray(request)) throw new HttpFailure(400, 'the request body must be a JSON object');
  }
  if (!load) {
    if (request.ready !== undefined && typeof request.ready !== 'boolean') throw new HttpFailure(400, `"ready" must be true or false, got ${JSON.stringify(request.ready)}`);
    sendJson(res, 200, repository.index(request.ready === true));
    return true;
  }
  let name: string;
  try {
    name = decodeURIComponent(load[1]);
  } catch {
    throw new HttpFailure(400, `malformed percent-encoding in the URL path: ${JSON.stringify(load[1])}`);
  }
  await (load[2] === 'load' ? repository.load(name) : repository.unload(name));
  sendJson(res, 200, {});
  return true;
}
