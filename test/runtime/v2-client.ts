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
  /** grpc.health.v1 Watch: a server stream of statuses. */
  watch(service?: string): HealthWatch;
  close(): void;
}

export interface HealthWatch {
  /** The next status the server sent (in order, none skipped); fails after `timeoutMs` or if the stream ends first. */
  next(timeoutMs?: number): Promise<string>;
  /** Every status received so far. */
  readonly received: string[];
  /** The call's final status (OK when the server ended the watch). */
  readonly ended: Promise<grpc.StatusObject>;
  cancel(): void;
}

function healthWatch(client: grpc.Client, service: string): HealthWatch {
  const stream = (client as unknown as { Watch(req: Msg): grpc.ClientReadableStream<Msg> }).Watch({ service });
  const received: string[] = [];
  let read = 0;
  let wake: (() => void) | undefined;
  let final: grpc.StatusObject | undefined;
  stream.on('data', (m: Msg) => { received.push(m.status); wake?.(); });
  // A cancelled or failed watch reports through 'status' too.
  stream.on('error', () => {});
  const ended = new Promise<grpc.StatusObject>((resolve) => stream.on('status', (s: grpc.StatusObject) => { final = s; resolve(s); wake?.(); }));
  return {
    received,
    ended,
    cancel: () => stream.cancel(),
    async next(timeoutMs = 10_000) {
      const until = Date.now() + timeoutMs;
      while (read >= received.length) {
        if (final) throw new Error(`watch of '${service}' ended (${final.code} ${final.details}) after ${JSON.stringify(received)}`);
        if (Date.now() > until) throw new Error(`watch of '${service}': no new status within ${timeoutMs} ms (so far ${JSON.stringify(received)})`);
        await new Promise<void>((resolve) => { wake = resolve; setTimeout(resolve, 50); });
      }
      return received[read++];
    },
  };
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
    watch: (service = '') => healthWatch(health, service),
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
