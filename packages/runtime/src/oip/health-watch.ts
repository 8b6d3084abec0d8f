import { HealthStatus } from './codec.ts';

type Status = (typeof HealthStatus)[keyof typeof HealthStatus];

/** What a watch writes to: a grpc-js server-streaming call, or the service front's own HTTP/2 stream. */
export interface WatchCall {
  readonly cancelled: boolean;
  write(message: unknown): unknown;
  end(): unknown;
  once(event: 'cancelled' | 'close' | 'error', listener: () => void): unknown;
}

interface Watch {
  service: string;
  last?: Status;
  call: WatchCall;
  encode(status: Status): unknown;
}

/**
 * The open grpc.health.v1 Watch calls of a server. As the health protocol says: a watch gets the service's status
 * at once, then a message on each change; a service unknown to the server gets SERVICE_UNKNOWN and the call stays
 * open (should it become known, its status follows). The server calls `changed()` whenever anything a status
 * depends on may have changed; only real changes are sent. `endAll` ends every watch with OK (clients then
 * re-watch with backoff), so a draining server is not held open by its watchers.
 */
export class HealthWatches {
  private readonly watches = new Set<Watch>();
  /** After `endAll`: a new watch gets the status at once and is ended too. */
  private ended = false;

  /** `statusOf(service)`: SERVING, NOT_SERVING, or SERVICE_UNKNOWN for a service this server does not know. */
  constructor(private readonly statusOf: (service: string) => Status) {}

  get size(): number {
    return this.watches.size;
  }

  /** Starts a watch on `call` for `service`; `encode` turns a status into what `call.write` takes. */
  add(call: WatchCall, service: string, encode: (status: Status) => unknown): void {
    const watch: Watch = { service, call, encode };
    if (this.ended) {
      this.send(watch);
      call.end();
      return;
    }
    this.watches.add(watch);
    const forget = () => this.watches.delete(watch);
    call.once('cancelled', forget);
    call.once('close', forget);
    call.once('error', forget);
    this.send(watch);
  }

  changed(): void {
    for (const watch of this.watches) this.send(watch);
  }

  /** Sends each watch its status as it is now (a draining server's: NOT_SERVING), then ends them all with OK. */
  endAll(): void {
    this.ended = true;
    this.changed();
    for (const watch of [...this.watches]) {
      this.watches.delete(watch);
      watch.call.end();
    }
  }

  private send(watch: Watch): void {
    const status = this.statusOf(watch.service);
    if (status === watch.last || watch.call.cancelled) return;
    watch.last = status;
    watch.call.write(watch.encode(status));
  }
}
