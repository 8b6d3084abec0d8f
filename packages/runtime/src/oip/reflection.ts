import type { IncomingHttpHeaders, ServerHttp2Stream } from 'node:http2';
import { gunzipSync, inflateSync } from 'node:zlib';
import { status } from './grpc-core.ts';
import { GRPC_CONTENT_TYPE, frame, parseTimeout, statusHeaders } from './grpc-wire.ts';
import { REFLECTED_FILES } from './reflection-descriptors.ts';
import { Reader, WIRE_LEN, Writer, readString } from './wire.ts';

/**
 * gRPC server reflection (grpc.reflection.v1 and v1alpha, what `grpcurl list` and `grpcurl describe` ask), served
 * by both of pyml's gRPC servers (the image's and `pyml serve`'s front): ServerReflectionInfo is a bidirectional
 * stream, each request answered in turn on it, and the stream ends OK when the client ends its side. The answers
 * are the FileDescriptorProtos made by reflection-generate.ts from the OIP, health and reflection protos.
 */
export const REFLECTION_PATHS: ReadonlySet<string> = new Set(['grpc.reflection.v1', 'grpc.reflection.v1alpha'].map((pkg) => `/${pkg}.ServerReflection/ServerReflectionInfo`));

/** A request is tiny (a name); anything larger is not a reflection client. */
const MAX_REQUEST_BYTES = 64 * 1024;
/** A stream with no request for this long is ended: a client holds one only while it looks things up. */
const IDLE_MS = 120_000;

interface Index {
  services: string[];
  files: Buffer[];
  byName: Map<string, number>;
  bySymbol: Map<string, number>;
}

let index: Index | undefined;

/** The descriptors decoded and indexed once, at the first reflection call (most servers never get one). */
function described(): Index {
  if (index) return index;
  const byName = new Map<string, number>();
  const bySymbol = new Map<string, number>();
  REFLECTED_FILES.forEach((file, i) => {
    byName.set(file.name, i);
    for (const symbol of file.symbols) bySymbol.set(symbol, i);
  });
  index = { services: REFLECTED_FILES.flatMap((f) => f.services), files: REFLECTED_FILES.map((f) => Buffer.from(f.descriptor, 'base64')), byName, bySymbol };
  return index;
}

interface ReflectionRequest {
  host: string;
  /** The field number of the request's message_request (3 file_by_filename … 7 list_services), 0 for none. */
  kind: number;
  /** Its string (a file name, a symbol, a type name) or an extension request's containing type. */
  value: string;
}

function decodeRequest(bytes: Buffer): ReflectionRequest {
  const r = Reader.create(bytes);
  const request: ReflectionRequest = { host: '', kind: 0, value: '' };
  while (r.pos < r.len) {
    const tag = r.uint32();
    const field = tag >>> 3;
    if (field === 1 && (tag & 7) === WIRE_LEN) request.host = readString(r);
    else if ((field === 3 || field === 4 || field === 6 || field === 7) && (tag & 7) === WIRE_LEN) {
      request.kind = field;
      request.value = readString(r);
    } else if (field === 5 && (tag & 7) === WIRE_LEN) {
      request.kind = 5;
      const sub = Reader.create(r.bytes());
      while (sub.pos < sub.len) {
        const t = sub.uint32();
        if (t >>> 3 === 1 && (t & 7) === WIRE_LEN) request.value = readString(sub);
        else sub.skipType(t & 7);
      }
    } else r.skipType(tag & 7);
  }
  return request;
}

/** The ServerReflectionResponse to one request, the request's own bytes echoed as original_request. */
function answer(request: ReflectionRequest, bytes: Buffer): Buffer {
  const { services, files, byName, bySymbol } = described();
  const w = Writer.create();
  if (request.host) w.uint32((1 << 3) | WIRE_LEN).string(request.host);
  w.uint32((2 << 3) | WIRE_LEN).bytes(bytes);
  const error = (code: status, message: string) => {
    w.uint32((7 << 3) | WIRE_LEN).fork().uint32(1 << 3).int32(code).uint32((2 << 3) | WIRE_LEN).string(message).ldelim();
  };
  const file = (i: number | undefined, what: string) => {
    // No file here imports another, so a file's transitive dependencies are none.
    if (i === undefined) return error(status.NOT_FOUND, `${what} not found (this server describes ${services.join(', ')})`);
    w.uint32((4 << 3) | WIRE_LEN).fork().uint32((1 << 3) | WIRE_LEN).bytes(files[i]!).ldelim();
  };
  switch (request.kind) {
    case 3: file(byName.get(request.value), `file ${request.value}`); break;
    case 4: file(bySymbol.get(request.value), `symbol ${request.value}`); break;
    // Extensions: proto3 files declare none.
    case 5: error(status.NOT_FOUND, `no extension of ${request.value} is known here`); break;
    case 6:
      if (!bySymbol.has(request.value)) error(status.NOT_FOUND, `type ${request.value} not found`);
      else w.uint32((5 << 3) | WIRE_LEN).fork().uint32((1 << 3) | WIRE_LEN).string(request.value).ldelim();
      break;
    case 7: {
      w.uint32((6 << 3) | WIRE_LEN).fork();
      for (const name of services) w.uint32((1 << 3) | WIRE_LEN).fork().uint32((1 << 3) | WIRE_LEN).string(name).ldelim();
      w.ldelim();
      break;
    }
    default: error(status.INVALID_ARGUMENT, 'the request sets no message_request (file_by_filename, file_containing_symbol, file_containing_extension, all_extension_numbers_of_type or list_services)');
  }
  return Buffer.from(w.finish());
}

/**
 * Serves one ServerReflectionInfo stream (the caller checked it is a gRPC POST to one of REFLECTION_PATHS). Bounded:
 * requests of at most 64 KiB (compressed ones inflated within that), read only while answers are taken (back
 * pressure), the caller's deadline or two idle minutes. A request that is not a reflection request ends the stream
 * INVALID_ARGUMENT; nothing a client sends reaches the server's other calls.
 */
export function serveReflection(stream: ServerHttp2Stream, headers: IncomingHttpHeaders): void {
  let final = { code: status.OK as status, details: '' };
  stream.respond({ ':status': 200, 'content-type': GRPC_CONTENT_TYPE }, { waitForTrailers: true });
  stream.once('wantTrailers', () => stream.sendTrailers(statusHeaders(final.code, final.details)));
  let buffered: Buffer = Buffer.alloc(0);
  let ended = false;
  const finish = (code: status, details: string) => {
    if (ended) return;
    ended = true;
    clearTimeout(idle);
    clearTimeout(deadline);
    final = { code, details };
    if (!stream.destroyed && !stream.closed) stream.end();
  };
  let idle = setTimeout(() => finish(status.DEADLINE_EXCEEDED, `no reflection request for ${IDLE_MS / 1000} s`), IDLE_MS);
  const timeout = parseTimeout(headers['grpc-timeout']);
  const deadline = timeout === undefined ? undefined : setTimeout(() => finish(status.DEADLINE_EXCEEDED, 'Deadline exceeded'), Math.min(timeout, 2 ** 31 - 1));
  stream.once('close', () => { ended = true; clearTimeout(idle); clearTimeout(deadline); });

  const next = (): void => {
    while (!ended && buffered.length >= 5) {
      const length = buffered.readUInt32BE(1);
      if (length > MAX_REQUEST_BYTES) return finish(status.RESOURCE_EXHAUSTED, `a reflection request of ${length} bytes is larger than the limit of ${MAX_REQUEST_BYTES} bytes`);
      if (buffered.length < 5 + length) return;
      const compressed = buffered[0] === 1;
      let message: Buffer = buffered.subarray(5, 5 + length);
      buffered = buffered.subarray(5 + length);
      let response: Buffer;
      try {
        if (compressed) message = inflated(message, headers['grpc-encoding']);
        response = answer(decodeRequest(message), message);
      } catch (error) {
        return finish(status.INVALID_ARGUMENT, `not a ServerReflectionRequest: ${(error as Error).message}`);
      }
      clearTimeout(idle);
      idle = setTimeout(() => finish(status.DEADLINE_EXCEEDED, `no reflection request for ${IDLE_MS / 1000} s`), IDLE_MS);
      if (!stream.write(frame(response))) {
        // The client is not reading: read no more of its requests until it does.
        stream.pause();
        stream.once('drain', () => { stream.resume(); next(); });
        return;
      }
    }
  };
  stream.on('data', (chunk: Buffer) => {
    buffered = buffered.length ? Buffer.concat([buffered, chunk]) : chunk;
    next();
  });
  stream.on('end', () => {
    if (buffered.length) return finish(status.INVALID_ARGUMENT, `the request stream ended inside a message (${buffered.length} bytes left)`);
    finish(status.OK, '');
  });
}

function inflated(message: Buffer, encoding: string | string[] | undefined): Buffer {
  const options = { maxOutputLength: MAX_REQUEST_BYTES };
  if (encoding === 'gzip') return gunzipSync(message, options);
  if (encoding === 'deflate') return inflateSync(message, options);
  throw new Error(`compressed flag set with grpc-encoding '${String(encoding ?? '')}' (gzip or deflate expected)`);
}
