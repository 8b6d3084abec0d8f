import net, { type Socket } from 'node:net';
import { status } from './oip/grpc-core.ts';
import type { Logger } from '@pyml/contract';
import type { Predictor } from './batcher.ts';
import { describeError } from './errors.ts';
import type { ModelHost } from './model-host.ts';
import { encodeInferResponse } from './oip/codec.ts';
import {
  CALL_OVERHEAD_BYTES, type CallFrame, FrameFailure, FrameReader, FrameType, RESULT_JSON, RESULT_PROTO, failureFrameBody, grpcPathOf,
  oversizeFailure, readCallFrame, writeFrame,
} from './oip/frames.ts';
import { RpcFailure } from './oip/grpc-wire.ts';
import { jsonResponseChunks } from './oip/json.ts';
import { listenPrivately } from './private-socket.ts';
import { inferJson, restFailure, servedModel } from './rest-infer.ts';
import type { InferenceServer } from './server.ts';

export interface FrameServerOptions {
  logger: Logger;
  /** Largest request or response message, in bytes (the gRPC server's limit). */
  maxMessageBytes: number;
  /** The gRPC server whose methods a CALL runs (the same code, deadlines, statuses and drain accounting). */
  grpc: InferenceServer;
}

/** A REST answer up to this size travels as its JSON text; a larger one as the protobuf response, which the front streams as JSON. */
const JSON_ANSWER_BYTES = 64 * 1024;
/** Calls in flight on one connection: pyml serve sends at most its --max-concurrency; more is refused, never queued. */
const MAX_CALLS_PER_CONNECTION = 16_384;

/** gRPC status for the HTTP status a REST call failed with (the front answers with the HTTP one). */
function codeForHttp(httpStatus: number): status {
  switch (httpStatus) {
    case 400: return status.INVALID_ARGUMENT;
    case 404: return status.NOT_FOUND;
    case 408: return status.DEADLINE_EXCEEDED;
    case 413: return status.RESOURCE_EXHAUSTED;
    case 503: return status.UNAVAILABLE;
    default: return status.INTERNAL;
  }
}

/**
 * The model's end of pyml serve's framed protocol (oip/frames.ts), on a Unix socket of its own beside the gRPC one.
 * A gRPC method's CALL runs through the gRPC server's own method table; a REST_INFER CALL carries the client's JSON
 * body, parsed here once, and is answered with the JSON text (or, when large, the protobuf response). Calls whose
 * caller went (CANCEL) or whose connection closed are dropped when they settle; a drain refuses new calls and waits
 * for the ones in flight.
 */
export class FrameServer {
  private readonly server = net.createServer((socket) => this.accept(socket));
  private readonly connections = new Set<Socket>();
  private host?: ModelHost;
  private predictor?: Predictor;
  private draining = false;
  private inFlight = 0;
  private idle?: () => void;

  constructor(private readonly options: FrameServerOptions) {
    this.server.on('error', (error) => options.logger.error('frame server error', { error: describeError(error) }));
  }

  listen(socket: string): Promise<void> {
    return listenPrivately(socket, () => new Promise<void>((resolve, reject) => {
      const failed = (error: Error) => reject(new Error(`cannot listen on ${socket}: ${error.message}`));
      this.server.once('error', failed);
      this.server.listen(socket, () => {
        this.server.off('error', failed);
        resolve();
      });
    }));
  }

  attach(host: ModelHost, predictor: Predictor): void {
    this.host = host;
    this.predictor = predictor;
  }

  forceShutdown(): void {
    this.draining = true;
    this.server.close();
    for (const socket of this.connections) socket.destroy();
  }

  /** Refuses new calls, waits for those in flight (up to `graceMs`), then closes every connection. */
  async drain(graceMs: number): Promise<boolean> {
    this.draining = true;
    this.server.close();
    const settled = this.inFlight === 0 ? Promise.resolve(true) : new Promise<boolean>((resolve) => { this.idle = () => resolve(true); });
    let timer: NodeJS.Timeout | undefined;
    const clean = await Promise.race([settled, new Promise<boolean>((resolve) => { timer = setTimeout(() => resolve(false), graceMs); })]);
    clearTimeout(timer);
    for (const socket of this.connections) socket.end();
    return clean;
  }

  private accept(socket: Socket): void {
    this.connections.add(socket);
    /** Calls of this connection in flight, by id: a CANCEL or the connection's end drops their answer. */
    const calls = new Map<number, { cancelled: boolean }>();
    const { maxMessageBytes } = this.options;
    const answer = (id: number, type: FrameType, parts: Buffer[]) => {
      if (!socket.destroyed) writeFrame(socket, type, id, parts);
    };
    const fail = (id: number, failure: RpcFailure) => answer(id, FrameType.FAILURE, [failureFrameBody(failure)]);
    const reader = new FrameReader(maxMessageBytes + CALL_OVERHEAD_BYTES, {
      frame: (type, id, body) => {
        if (type === FrameType.CANCEL) {
          const call = calls.get(id);
          if (call) call.cancelled = true;
          return;
        }
        if (type !== FrameType.CALL) return fail(id, new RpcFailure(status.INVALID_ARGUMENT, `unexpected frame type ${type} from the caller`));
        if (calls.has(id)) return fail(id, new RpcFailure(status.INVALID_ARGUMENT, `call id ${id} is already in flight on this connection`));
        if (this.draining) return fail(id, new RpcFailure(status.UNAVAILABLE, 'the model server is shutting down'));
        if (calls.size >= MAX_CALLS_PER_CONNECTION) return fail(id, new RpcFailure(status.RESOURCE_EXHAUSTED, `${calls.size} calls are in flight on this connection, the most it takes`));
        let call: CallFrame;
        try {
          call = readCallFrame(body);
        } catch (error) {
          return fail(id, error as RpcFailure);
        }
        if (call.request.length > maxMessageBytes) return fail(id, oversizeFailure(`request to ${call.method}`, call.request.length, maxMessageBytes));
        const state = { cancelled: false };
        calls.set(id, state);
        this.inFlight++;
        this.run(call, (type, parts) => {
          calls.delete(id);
          if (!state.cancelled) answer(id, type, parts);
          if (--this.inFlight === 0 && this.idle) this.idle();
        });
      },
      oversize: (type, id, bodyBytes) => {
        if (type === FrameType.CALL) fail(id, oversizeFailure('call frame', bodyBytes, maxMessageBytes + CALL_OVERHEAD_BYTES));
      },
    });
    socket.on('data', (chunk: Buffer) => reader.push(chunk));
    // The front went away (or broke the connection): nothing is left to answer; predictions in flight finish for nobody.
    socket.on('error', () => {});
    socket.on('close', () => {
      this.connections.delete(socket);
      for (const call of calls.values()) call.cancelled = true;
    });
  }

  /** Runs one call; `settle` gets its answer frame once. */
  private run(call: CallFrame, settle: (type: FrameType, parts: Buffer[]) => void): void {
    const deadline = call.timeoutMs === undefined ? undefined : Date.now() + call.timeoutMs;
    const path = grpcPathOf(call.method);
    if (path !== undefined) {
      this.options.grpc.call(path, call.request, deadline, (failure, response) => {
        if (failure) settle(FrameType.FAILURE, [failureFrameBody(failure)]);
        else settle(FrameType.RESULT, [Buffer.of(RESULT_PROTO), response!]);
      });
      return;
    }
    // The deadline ends the call here (the prediction finishes for nobody), as InferenceServer.call does for gRPC.
    let answered = false;
    let timer: NodeJS.Timeout | undefined;
    const finish = (type: FrameType, parts: Buffer[]) => {
      if (answered) return;
      answered = true;
      clearTimeout(timer);
      settle(type, parts);
    };
    const failed = (failure: FrameFailure) => finish(FrameType.FAILURE, [failureFrameBody(failure)]);
    if (deadline !== undefined) timer = setTimeout(() => failed(new FrameFailure(status.DEADLINE_EXCEEDED, 'Deadline exceeded', undefined, 504)), Math.max(0, deadline - Date.now()));
    this.restInfer(call).then(
      (parts) => finish(FrameType.RESULT, parts),
      (error: unknown) => {
        if (error instanceof FrameFailure) return failed(error);
        const failure = restFailure(error, this.options.logger);
        failed(new FrameFailure(codeForHttp(failure.status), failure.message, undefined, failure.status));
      },
    );
  }

  private async restInfer(call: CallFrame): Promise<Buffer[]> {
    const host = servedModel(this.host, call.name, call.version, true)!;
    const response = await inferJson(host, this.predictor!, call.request, this.options.maxMessageBytes);
    const chunks: string[] = [];
    let size = 0;
    for (const chunk of jsonResponseChunks(response)) {
      chunks.push(chunk);
      size += chunk.length;
      if (size > JSON_ANSWER_BYTES) {
        // Large: the raw protobuf answer, which the front turns into JSON as it writes (never all of its text at once).
        const proto = encodeInferResponse({ modelName: response.modelName, modelVersion: response.modelVersion, id: response.id ?? '', outputs: response.outputs, raw: true });
        if (proto.length > this.options.maxMessageBytes) throw new FrameFailure(status.RESOURCE_EXHAUSTED, `the response of ${proto.length} bytes is larger than the limit of ${this.options.maxMessageBytes} bytes`, undefined, 500);
        return [Buffer.of(RESULT_PROTO), proto];
      }
    }
    return [Buffer.of(RESULT_JSON), Buffer.from(chunks.join(''))];
  }
}
