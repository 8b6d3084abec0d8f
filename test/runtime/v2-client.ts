import { join } from 'node:path';
import * as grpc from '@grpc/grpc-js';
import * as protoLoader from '@grpc/proto-loader';
import { PROTO_DIR } from './fixtures.ts';

/**
 * A stock Open Inference Protocol client, generated at test time by @grpc/proto-loader from proto/*.proto: what an
 * existing V2 client does, and nothing of the runtime's own codec.
 */
const definition = protoLoader.loadSync([join(PROTO_DIR, 'grpc_predict_v2.proto'), join(PROTO_DIR, 'health.proto')], {
  keepCase: true, longs: String, enums: String, defaults: true, oneofs: true,
});
const pkg = grpc.loadPackageDefinition(definition) as unknown as {
  inference: { GRPCInferenceService: grpc.ServiceClientConstructor };
  grpc: { health: { v1: { Health: grpc.ServiceClientConstructor } } };
};

// Loose shapes of proto-loader's plain objects: tests assert on them field by field.
// eslint-disable-next-line @typescript-eslint/no-explicit-any
export type Msg = any;

export interface V2Client {
  call(method: string, request: Msg): Promise<Msg>;
  health(service?: string): Promise<Msg>;
  close(): void;
}

export function v2Client(socket: string): V2Client {
  const client = new pkg.inference.GRPCInferenceService(`unix:${socket}`, grpc.credentials.createInsecure());
  const health = new pkg.grpc.health.v1.Health(`unix:${socket}`, grpc.credentials.createInsecure());
  const invoke = (c: grpc.Client, method: string, request: Msg) => new Promise<Msg>((resolve, reject) => {
    (c as unknown as Record<string, (req: Msg, cb: (e: grpc.ServiceError | null, r: Msg) => void) => void>)[method](request, (e, r) => (e ? reject(e) : resolve(r)));
  });
  return {
    call: (method, request) => invoke(client, method, request),
    health: (service = '') => invoke(health, 'Check', { service }),
    close: () => { client.close(); health.close(); },
  };
}

/** The ServiceError a call failed with. */
export async function callError(p: Promise<unknown>): Promise<grpc.ServiceError> {
  try {
    await p;
  } catch (error) {
    return error as grpc.ServiceError;
  }
  throw new Error('expected the call to fail');
}
