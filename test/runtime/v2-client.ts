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
  call(method: string, request: Msg, deadlineMs?: number): Promise<Msg>;
  health(service?: string): Promise<Msg>;
  close(): void;
}

/**
 * A client to a Unix socket path (`/…`) or a gRPC address (`127.0.0.1:8001`, `unix:/…`). Message sizes are not
 * limited on the client side, so the server's own limits are what a test sees.
 */
export function v2Client(target: string): V2Client {
  const address = target.startsWith('/') ? `unix:${target}` : target;
  const client = new pkg.inference.GRPCInferenceService(address, grpc.credentials.createInsecure(), { 'grpc.max_receive_message_length': -1, 'grpc.max_send_message_length': -1 });
  const health = new pkg.grpc.health.v1.Health(address, grpc.credentials.createInsecure());
  const invoke = (c: grpc.Client, method: string, request: Msg, deadlineMs = 20_000) => new Promise<Msg>((resolve, reject) => {
    (c as unknown as Record<string, (req: Msg, opts: grpc.CallOptions, cb: (e: grpc.ServiceError | null, r: Msg) => void) => void>)[method](
      request, { deadline: Date.now() + deadlineMs }, (e, r) => (e ? reject(e) : resolve(r)));
  });
  return {
    call: (method, request, deadlineMs) => invoke(client, method, request, deadlineMs),
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
