import { createServer, connect, type Socket } from 'node:net';

export interface CuttingProxy {
  host: string;
  /** Connections cut so far. */
  cuts(): number;
  close(): Promise<void>;
}

export interface CutOptions {
  /** Cut a connection once the client has sent this many bytes on it (an upload dropped half-way). */
  afterUploadBytes?: number;
  /** Cut a connection once the server has sent this many bytes on it (a download dropped half-way). */
  afterDownloadBytes?: number;
  /** After this many cuts, pass everything through (default: never). */
  maxCuts?: number;
}

/**
 * A TCP proxy to 127.0.0.1:`targetPort` that drops connections abruptly (both sides, with a reset) part-way
 * through: a registry that goes away in the middle of a transfer.
 */
export async function startCuttingProxy(targetPort: number, options: CutOptions): Promise<CuttingProxy> {
  const maxCuts = options.maxCuts ?? Infinity;
  let cuts = 0;
  const sockets = new Set<Socket>();
  const server = createServer((client) => {
    const upstream = connect(targetPort, '127.0.0.1');
    sockets.add(client).add(upstream);
    let cut = false;
    const relay = (from: Socket, to: Socket, limit: number | undefined) => {
      let passed = 0;
      from.on('data', (chunk: Buffer) => {
        if (cut) return;
        passed += chunk.length;
        if (limit !== undefined && cuts < maxCuts && passed > limit) {
          cut = true;
          cuts++;
          to.write(chunk.subarray(0, chunk.length - (passed - limit)));
          client.resetAndDestroy();
          upstream.destroy();
          return;
        }
        if (!to.write(chunk)) {
          from.pause();
          to.once('drain', () => from.resume());
        }
      });
      from.on('end', () => { if (!cut) to.end(); });
    };
    relay(client, upstream, options.afterUploadBytes);
    relay(upstream, client, options.afterDownloadBytes);
    for (const s of [client, upstream]) {
      s.on('error', () => { client.destroy(); upstream.destroy(); });
      s.on('close', () => sockets.delete(s));
    }
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as { port: number };
  return {
    host: `127.0.0.1:${port}`,
    cuts: () => cuts,
    close: () => new Promise((resolve) => {
      for (const s of sockets) s.destroy();
      server.close(() => resolve());
    }),
  };
}
