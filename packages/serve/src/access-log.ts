/**
 * The access log of `pyml serve`: one line per request answered, through the service's logger (so in the format
 * --log-format chose), with what an operator greps for: protocol, method or path, model, status and latency.
 */
import type { Logger } from '@pyml/contract';

export interface AccessEntry {
  protocol: 'http' | 'grpc';
  /** HTTP: `POST /v2/models/iris/infer`; gRPC: the method path. */
  request: string;
  /** HTTP status code, or the gRPC status code. */
  status: number;
  ms: number;
}

export type AccessLog = (entry: AccessEntry) => void;

export function accessLogTo(logger: Logger): AccessLog {
  return (entry) => logger.info('access', { ...entry, ms: Math.round(entry.ms * 100) / 100 });
}

/** The request line as logged: bounded, since a URL comes from the caller. */
export function requestText(method: string | undefined, url: string | undefined): string {
  const line = `${method ?? '?'} ${url ?? ''}`;
  return line.length > 300 ? `${line.slice(0, 300)}…` : line;
}
