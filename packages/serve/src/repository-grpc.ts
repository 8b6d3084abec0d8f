import { status } from '@pyml/runtime/protocol';
import type { ModelRepository } from './repository.ts';
import { RpcFailure } from './rpc-failure.ts';

/**
 * The gRPC half of the model repository extension: `inference.model_repository.ModelRepositoryService` as KServe
 * defines it (model_repository.proto), and the same three methods on `inference.GRPCInferenceService` where Triton
 * puts them (the same field numbers):
 *   RepositoryIndexRequest { string repository_name = 1; bool ready = 2; }
 *   RepositoryIndexResponse { repeated ModelIndex models = 1; }  ModelIndex { name = 1; version = 2; state = 3; reason = 4; }
 *   RepositoryModelLoadRequest / RepositoryModelUnloadRequest { string repository_name = 1; string model_name = 2; }
 *   RepositoryModelLoadResponse / RepositoryModelUnloadResponse {}
 */
export const REPOSITORY_SERVICE = 'inference.model_repository.ModelRepositoryService';
const TRITON_SERVICE = 'inference.GRPCInferenceService';

type Unary = (request: Buffer) => Promise<Buffer>;

/** The extension's methods by gRPC path; each fails UNIMPLEMENTED when the service has no repository. */
export function repositoryMethods(repository: () => ModelRepository | undefined): [string, Unary][] {
  const need = (): ModelRepository => {
    const r = repository();
    if (!r) throw new RpcFailure(status.UNIMPLEMENTED, 'this service has no model repository (start pyml serve with --repository DIR)');
    return r;
  };
  const index: Unary = async (request) => {
    const ready = readFields(request).get(2) === 1;
    return encodeIndex(need().index(ready));
  };
  const load: Unary = async (request) => {
    await need().load(modelName(request));
    return Buffer.alloc(0);
  };
  const unload: Unary = async (request) => {
    await need().unload(modelName(request));
    return Buffer.alloc(0);
  };
  return [REPOSITORY_SERVICE, TRITON_SERVICE].flatMap((service) => [
    [`/${service}/RepositoryIndex`, index], [`/${service}/RepositoryModelLoad`, load], [`/${service}/RepositoryModelUnload`, unload],
  ] as [string, Unary][]);
}

function modelName(request: Buffer): string {
  const name = readFields(request).get(2);
  if (typeof name !== 'string' || name === '') throw new RpcFailure(status.INVALID_ARGUMENT, 'model_name (field 2) is required');
  return name;
}

/** A message's string (length-delimited, read as UTF-8) and varint fields by number; others are skipped. */
function readFields(buf: Buffer): Map<number, string | number> {
  const fields = new Map<number, string | number>();
  let pos = 0;
  const varint = (): number => {
    let value = 0;
    for (let shift = 0; ; shift += 7) {
      if (pos >= buf.length || shift > 63) throw new RpcFailure(status.INVALID_ARGUMENT, 'malformed request message (truncated varint)');
      const byte = buf[pos++];
      value += (byte & 0x7f) * 2 ** shift;
      if (byte < 0x80) return value;
    }
  };
  while (pos < buf.length) {
    const tag = varint();
    const field = Math.floor(tag / 8);
    const wire = tag & 7;
    if (wire === 0) fields.set(field, varint());
    else if (wire === 2) {
      const length = varint();
      if (pos + length > buf.length) throw new RpcFailure(status.INVALID_ARGUMENT, 'malformed request message (field past its end)');
      fields.set(field, buf.toString('utf8', pos, pos + length));
      pos += length;
    } else if (wire === 1) pos += 8;
    else if (wire === 5) pos += 4;
    else throw new RpcFailure(status.INVALID_ARGUMENT, `malformed request message (wire type ${wire})`);
  }
  return fields;
}

function lengthDelimited(field: number, bytes: Buffer): Buffer[] {
  const header: number[] = [field * 8 + 2];
  for (let n = bytes.length; ; n >>>= 7) {
    if (n < 0x80) { header.push(n); break; }
    header.push((n & 0x7f) | 0x80);
  }
  return [Buffer.from(header), bytes];
}

function encodeIndex(rows: { name: string; version: string; state: string; reason: string }[]): Buffer {
  return Buffer.concat(rows.flatMap((row) => {
    const entry = Buffer.concat([row.name, row.version, row.state, row.reason].flatMap((text, i) => (text ? lengthDelimited(i + 1, Buffer.from(text, 'utf8')) : [])));
    return lengthDelimited(1, entry);
  }));
}
